"""Escalations and their steps (§3.5.5), as the command line and the admin pages show them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from gateway.core.hours import iso
from gateway.storage.models import Escalation, ServiceRequest


def escalations(
    session: Session, *, open_only: bool = False, sr_id: str | None = None
) -> list[dict[str, Any]]:
    """§3.5.5: every escalation (or one SR's), with its steps, for later analysis."""
    query = (
        select(Escalation, ServiceRequest.public_id)
        .join(ServiceRequest, ServiceRequest.id == Escalation.sr_id)
        .options(selectinload(Escalation.steps))
        .order_by(Escalation.opened_at.desc(), Escalation.id.desc())
    )
    if open_only:
        query = query.where(Escalation.closed_at.is_(None))
    if sr_id is not None:
        query = query.where(ServiceRequest.public_id == sr_id.upper())
    return [
        {
            "id": e.id,
            "sr_id": public_id,
            "source": e.source,
            "requested_by": e.requested_by,
            "reason": e.reason,
            "level": e.level,
            "opened_at": iso(e.opened_at),
            "closed_at": iso(e.closed_at),
            "steps": [{"at": iso(s.at), "step": s.step, "detail": s.detail} for s in e.steps],
        }
        for e, public_id in session.execute(query)
    ]
