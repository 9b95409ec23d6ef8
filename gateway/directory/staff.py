"""SOC staff: the addresses whose answers, notes and commands act on SRs (R2.1, R2.2)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.directory.checks import DirectoryError, address, choice
from gateway.storage.models import SocStaff

STAFF_ROLES = ("analyst", "team_leader", "duty_manager")


def add_staff(session: Session, email: str, name: str, role: str = "analyst") -> SocStaff:
    email = address(email)
    staff = session.scalar(select(SocStaff).where(SocStaff.email == email))
    if staff is None:
        staff = SocStaff(email=email, name="", role="analyst")
        session.add(staff)
    staff.name, staff.role = name.strip() or email, choice(role, STAFF_ROLES, "role")
    session.flush()
    return staff


def remove_staff(session: Session, email: str) -> None:
    staff = session.scalar(select(SocStaff).where(SocStaff.email == address(email)))
    if staff is None:
        raise DirectoryError(f"no SOC staff {email!r}")
    session.delete(staff)


def staff(session: Session) -> list[SocStaff]:
    return list(session.scalars(select(SocStaff).order_by(SocStaff.email)))
