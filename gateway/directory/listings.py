"""The directory as the command line and the admin pages show it, as plain dicts."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.storage.models import AdminAccount, Contact, Customer, Entitlement, SocStaff


def contact(c: Contact) -> dict[str, Any]:
    return {
        "email": c.email,
        "name": c.name,
        "customer": c.customer.name,
        "language": c.language,
        "role": c.role,
        # R4.4: the last permanent failure of mail to the address (a dead address)
        "bounced_at": c.bounced_at.isoformat() if c.bounced_at else None,
        "bounce_reason": c.bounce_reason,
    }


def customers(session: Session) -> list[dict[str, Any]]:
    counts = dict(
        session.execute(
            select(Contact.customer_id, func.count(Contact.id))
            .where(Contact.removed_at.is_(None))
            .group_by(Contact.customer_id)
        ).all()
    )
    return [
        {
            "name": c.name,
            "timezone": c.timezone,
            "country": c.country,
            "subdivision": c.subdivision,
            "contacts": counts.get(c.id, 0),
        }
        for c in session.scalars(select(Customer).order_by(Customer.name))
    ]


def entitlement(e: Entitlement) -> dict[str, Any]:
    return {
        "id": e.id,
        "customer": e.customer.name,
        "product": e.product.name,
        "serial": e.serial,
        "valid_from": e.valid_from.isoformat(),
        "valid_to": e.valid_to.isoformat(),
        "in_production": e.in_production,
        "end_of_support": e.end_of_support.isoformat() if e.end_of_support else None,
    }


def staff_member(s: SocStaff) -> dict[str, Any]:
    return {"email": s.email, "name": s.name, "role": s.role}


def admin(a: AdminAccount) -> dict[str, Any]:
    """An admin account as shown: never its hash."""
    return {
        "email": a.email,
        "created_at": a.created_at.isoformat(),
        "signed_in_at": a.signed_in_at.isoformat() if a.signed_in_at else None,
    }
