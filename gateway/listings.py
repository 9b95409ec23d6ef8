"""Reading what is stored, as plain dicts for the CLI's tables and --json output."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from gateway.models import (
    Contact,
    Customer,
    Deadline,
    Delivery,
    Entitlement,
    Escalation,
    Message,
    ServiceRequest,
    SocStaff,
    StoredMail,
)
from parsers.mail import parse

MAX_TEXT_SHOWN = 20_000  # characters of a held mail's text in `review show`


def _when(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def requests(
    session: Session, *, state: str | None = None, limit: int = 200
) -> list[dict[str, Any]]:
    query = (
        select(ServiceRequest, func.count(Message.id))
        .outerjoin(Message, Message.sr_id == ServiceRequest.id)
        .group_by(ServiceRequest.id)
        .order_by(ServiceRequest.created_at.desc(), ServiceRequest.id.desc())
        .limit(limit)
    )
    if state:
        query = query.where(ServiceRequest.state == state)
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
            {"kind": d.kind, "due_at": _when(d.due_at), "met_at": _when(d.met_at)}
            for d in deadlines
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
        "created_at": _when(sr.created_at),
        "updated_at": _when(sr.updated_at),
        "initial_response_at": _when(sr.initial_response_at),
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
        "received_at": _when(m.created_at),
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
        "created_at": _when(d.created_at),
        "sent_at": _when(d.sent_at),
        "last_error": d.last_error,
    }


def deliveries(
    session: Session, *, status: str | None = None, limit: int = 200
) -> list[dict[str, Any]]:
    query = select(Delivery).order_by(Delivery.id.desc()).limit(limit)
    if status:
        query = query.where(Delivery.status == status)
    return [delivery(d) for d in session.scalars(query)]


def held_mails(
    session: Session, *, status: str = "review", limit: int = 200
) -> list[dict[str, Any]]:
    """The review queue (R1.8): mail that opened nothing, with the reason."""
    query = (
        select(
            StoredMail.id,
            StoredMail.sender,
            StoredMail.subject,
            StoredMail.reason,
            StoredMail.received_at,
            StoredMail.source,
            StoredMail.message_id,
            StoredMail.size,
            StoredMail.status,
            StoredMail.failed_recipients,
        )
        .where(StoredMail.status == status)
        .order_by(StoredMail.id.desc())
        .limit(limit)
    )
    return [
        {
            "id": row.id,
            "from": row.sender,
            "subject": row.subject,
            "reason": row.reason,
            "received_at": _when(row.received_at),
            "source": row.source,
            "message_id": row.message_id,
            "size": row.size,
            "status": row.status,
            "failed_recipients": row.failed_recipients,  # a bounce's, for suspending addresses
        }
        for row in session.execute(query)
    ]


def stored_mail(session: Session, stored_id: int) -> dict[str, Any] | None:
    """One stored mail as kept: envelope, reason, verdict, its header block and parse defects."""
    row = session.get(StoredMail, stored_id)
    if row is None:
        return None
    head = bytes(row.data).replace(b"\r\n", b"\n").partition(b"\n\n")[0]
    return {
        "id": row.id,
        "status": row.status,
        "reason": row.reason,
        "source": row.source,
        "received_at": _when(row.received_at),
        "mail_from": row.mail_from,
        "rcpt_tos": row.rcpt_tos,
        "peer": row.peer,
        "from": row.sender,
        "subject": row.subject,
        "message_id": row.message_id,
        "size": row.size,
        "authentication": row.authentication,
        "failed_recipients": row.failed_recipients,
        "headers": head[:16_384].decode("utf-8", "replace"),
        "defects": list(parse(bytes(row.data)).defects),
    }


def held_mail(session: Session, stored_id: int) -> dict[str, Any] | None:
    """One mail of the review queue as `stored_mail` shows it, with the text a reviewer reads."""
    shown = stored_mail(session, stored_id)
    if shown is None:
        return None
    mail = parse(bytes(session.get_one(StoredMail, stored_id).data))
    files = [{"filename": a.filename, "size": a.size} for a in mail.attachments]
    return {**shown, "text": mail.text[:MAX_TEXT_SHOWN], "attachments": files}


def escalations(session: Session, *, open_only: bool = False) -> list[dict[str, Any]]:
    """§3.5.5: every escalation, with its steps, for later analysis."""
    query = (
        select(Escalation, ServiceRequest.public_id)
        .join(ServiceRequest, ServiceRequest.id == Escalation.sr_id)
        .options(selectinload(Escalation.steps))
        .order_by(Escalation.opened_at.desc(), Escalation.id.desc())
    )
    if open_only:
        query = query.where(Escalation.closed_at.is_(None))
    return [
        {
            "id": e.id,
            "sr_id": public_id,
            "source": e.source,
            "requested_by": e.requested_by,
            "reason": e.reason,
            "level": e.level,
            "opened_at": _when(e.opened_at),
            "closed_at": _when(e.closed_at),
            "steps": [{"at": _when(s.at), "step": s.step, "detail": s.detail} for s in e.steps],
        }
        for e, public_id in session.execute(query)
    ]


def contact(c: Contact) -> dict[str, Any]:
    return {
        "email": c.email,
        "name": c.name,
        "customer": c.customer.name,
        "language": c.language,
        "role": c.role,
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
