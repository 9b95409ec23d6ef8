"""Service Requests as the command line and the admin pages show them, as plain dicts."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from gateway.core.hours import iso
from gateway.outbound.listings import delivery
from gateway.storage.models import Customer, Deadline, Delivery, Message, ServiceRequest


def requests(
    session: Session,
    *,
    state: str | None = None,
    customer: str | None = None,
    sr_id: str | None = None,
    limit: int = 200,
) -> list[dict[str, Any]]:
    """SRs newest first; only those in `state`, of a customer whose name contains `customer`,
    whose SR ID contains `sr_id` (any case), when given."""
    query = (
        select(ServiceRequest, func.count(Message.id))
        .outerjoin(Message, Message.sr_id == ServiceRequest.id)
        .group_by(ServiceRequest.id)
        .order_by(ServiceRequest.created_at.desc(), ServiceRequest.id.desc())
        .limit(limit)
    )
    if state:
        query = query.where(ServiceRequest.state == state)
    if customer:
        named = select(Customer.id).where(Customer.name.ilike(f"%{_literal(customer)}%", "\\"))
        query = query.where(ServiceRequest.customer_id.in_(named))
    if sr_id:
        wanted = f"%{_literal(sr_id.strip().upper())}%"
        query = query.where(ServiceRequest.public_id.like(wanted, "\\"))
    return [
        {**_request(sr), "messages": count}
        for sr, count in session.execute(
            query.options(
                selectinload(ServiceRequest.customer), selectinload(ServiceRequest.requester)
            )
        )
    ]


def request(session: Session, public_id: str) -> dict[str, Any] | None:
    sr = session.scalar(select(ServiceRequest).where(ServiceRequest.public_id == public_id.upper()))
    if sr is None:
        return None
    messages = session.scalars(
        select(Message)
        .where(Message.sr_id == sr.id)
        .order_by(Message.created_at, Message.id)
        .options(selectinload(Message.attachments))
    )
    deliveries = session.scalars(
        select(Delivery).where(Delivery.sr_id == sr.id).order_by(Delivery.created_at, Delivery.id)
    )
    deadlines = session.scalars(
        select(Deadline).where(Deadline.sr_id == sr.id).order_by(Deadline.id)
    )
    follow_up_of = session.get(ServiceRequest, sr.follow_up_of_id) if sr.follow_up_of_id else None
    return {
        **_request(sr),
        "follow_up_of": follow_up_of.public_id if follow_up_of else None,
        "entitlement": sr.entitlement,
        "messages": [_message(m) for m in messages],
        "deliveries": [delivery(d) for d in deliveries],
        "deadlines": [
            {"kind": d.kind, "due_at": iso(d.due_at), "met_at": iso(d.met_at)} for d in deadlines
        ],
    }


def _request(sr: ServiceRequest) -> dict[str, Any]:
    return {
        "id": sr.public_id,
        "title": sr.title,
        "customer": sr.customer.name,
        "requester": sr.requester.email if sr.requester else None,
        "type": sr.type,
        "priority": sr.priority,
        "requested_priority": sr.requested_priority,
        "requested_reason": sr.requested_reason,
        "state": sr.state,
        "language": sr.language,
        "created_at": iso(sr.created_at),
        "updated_at": iso(sr.updated_at),
        "initial_response_at": iso(sr.initial_response_at),
    }


def _message(m: Message) -> dict[str, Any]:
    return {
        "direction": m.direction,
        "author": m.author_kind,
        "from": m.author_address,
        "from_name": m.author_name,
        "message_id": m.message_id,
        "subject": m.subject,
        "text": m.text,
        "reply_text": m.reply_text,
        "language": m.language,
        "received_at": iso(m.created_at),
        "attachments": [
            {
                "filename": a.filename,
                "content_type": a.content_type,
                "size": a.size,
                "sha256": a.sha256,
            }
            for a in m.attachments
        ],
    }


def _literal(text: str) -> str:
    """`text` matched as itself by LIKE (its % and _ escaped)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
