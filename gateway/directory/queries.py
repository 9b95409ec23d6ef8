"""The directory as the mail path reads it: who a sender is, who holds a role, a domain's policy.

Core statements, built once (the mail path runs a dozen per mail; storage/tables.py says why).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, select

from gateway.core.hours import Calendar
from gateway.core.vocabulary import SenderKind
from gateway.storage.tables import CONTACTS, CUSTOMERS, DOMAIN_POLICIES, STAFF


@dataclass(frozen=True)
class Sender:
    """Who the From address is in the directory."""

    kind: SenderKind
    address: str
    name: str = ""
    customer_id: int | None = None
    contact_id: int | None = None
    language: str | None = None
    customer_name: str = ""
    calendar: Calendar | None = None  # the customer's Business Hours – Standard


@dataclass(frozen=True)
class Person:
    """A contact or staff member to write to."""

    address: str
    name: str


_CONTACT = (
    select(
        CONTACTS.c.id,
        CONTACTS.c.name,
        CONTACTS.c.language,
        CONTACTS.c.customer_id,
        CUSTOMERS.c.name.label("customer"),
        CUSTOMERS.c.timezone,
        CUSTOMERS.c.country,
        CUSTOMERS.c.subdivision,
    )
    .join(CUSTOMERS, CUSTOMERS.c.id == CONTACTS.c.customer_id)
    .where(CONTACTS.c.email == bindparam("address"), CONTACTS.c.removed_at.is_(None))
)
_STAFF = select(STAFF.c.name).where(STAFF.c.email == bindparam("address"))
_DOMAIN_POLICY = select(DOMAIN_POLICIES.c.policy).where(
    DOMAIN_POLICIES.c.domain == bindparam("domain")
)


def sender_of(conn: Connection, address: str) -> Sender:
    """The contact (with its customer's calendar), else the SOC staff member, else unknown."""
    if not address:
        return Sender("unknown", address)
    row = conn.execute(_CONTACT, {"address": address}).first()
    if row is not None:
        return Sender(
            "contact",
            address,
            row.name,
            row.customer_id,
            row.id,
            row.language,
            row.customer,
            Calendar(row.timezone, row.country, row.subdivision),
        )
    name = conn.scalar(_STAFF, {"address": address})
    return Sender("soc", address, name) if name is not None else Sender("unknown", address)


def is_staff(conn: Connection, address: str) -> bool:
    return conn.scalar(_STAFF, {"address": address}) is not None


def contacts_with_role(conn: Connection, customer_id: int, role: str) -> list[Person]:
    rows = conn.execute(
        select(CONTACTS.c.email, CONTACTS.c.name)
        .where(
            CONTACTS.c.customer_id == customer_id,
            CONTACTS.c.role == role,
            CONTACTS.c.removed_at.is_(None),
        )
        .order_by(CONTACTS.c.email)
    )
    return [Person(row.email, row.name) for row in rows]


def staff_with_role(conn: Connection, role: str) -> list[Person]:
    rows = conn.execute(
        select(STAFF.c.email, STAFF.c.name).where(STAFF.c.role == role).order_by(STAFF.c.email)
    )
    return [Person(row.email, row.name) for row in rows]


def policy_for(conn: Connection, address: str, contacts: str, staff: str) -> str:
    """The sender domain's own policy, else `staff` for SOC staff and `contacts` for others."""
    domain = address.rpartition("@")[2].lower()
    explicit = conn.scalar(_DOMAIN_POLICY, {"domain": domain}) if domain else None
    if explicit:
        return str(explicit)
    return staff if address and is_staff(conn, address) else contacts
