"""The outbox as the command line and the admin pages show it, as plain dicts."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.core.hours import iso
from gateway.storage.models import Delivery


def delivery(d: Delivery) -> dict[str, Any]:
    return {
        "id": d.id,
        "template": d.template,
        "audience": d.audience,
        "language": d.language,
        "to": d.recipient,
        "message_id": d.message_id,
        "status": d.status,
        "attempts": d.attempts,
        "created_at": iso(d.created_at),
        "sent_at": iso(d.sent_at),
        "last_error": d.last_error,
    }


def deliveries(
    session: Session, *, status: str | None = None, limit: int = 200
) -> list[dict[str, Any]]:
    query = select(Delivery).order_by(Delivery.id.desc()).limit(limit)
    if status:
        query = query.where(Delivery.status == status)
    return [delivery(d) for d in session.scalars(query)]
