"""The SQL statements the use-cases need: small functions over a session, no business rules."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from gateway.ids import new_sr_id
from gateway.models import (
    AttachmentRow,
    Contact,
    Deadline,
    Delivery,
    Message,
    ServiceRequest,
    SocStaff,
    StoredMail,
    ThreadRef,
)
from parsers.mail import ParsedMail

# --- mail in ----------------------------------------------------------------------------------


def raw_mail_by_key(session: Session, dedup_key: str) -> StoredMail | None:
    return session.scalar(select(StoredMail).where(StoredMail.dedup_key == dedup_key))


def contact_by_address(session: Session, address: str) -> Contact | None:
    return session.scalar(
        select(Contact).where(Contact.email == address.lower(), Contact.removed_at.is_(None))
    )


def staff_by_address(session: Session, address: str) -> SocStaff | None:
    return session.scalar(select(SocStaff).where(SocStaff.email == address.lower()))


def request_by_public_id(session: Session, public_id: str) -> ServiceRequest | None:
    return session.scalar(select(ServiceRequest).where(ServiceRequest.public_id == public_id))


def requests_by_message_ids(session: Session, message_ids: Sequence[str]) -> dict[str, int]:
    """Message-ID -> SR id, for the Message-IDs the gateway received or sent."""
    if not message_ids:
        return {}
    rows = session.execute(
        select(ThreadRef.message_id, ThreadRef.sr_id).where(
            ThreadRef.message_id.in_(list(message_ids)[:100])
        )
    )
    return {row.message_id: row.sr_id for row in rows}


def notices_since(session: Session, recipient: str, template: str, since: datetime) -> int:
    return (
        session.scalar(
            select(func.count(Delivery.id)).where(
                Delivery.recipient == recipient,
                Delivery.template == template,
                Delivery.created_at >= since,
            )
        )
        or 0
    )


def new_public_id(session: Session) -> str:
    """A fresh SR ID; 2^40 of them make a clash rare, and it is checked anyway."""
    while True:
        candidate = new_sr_id()
        if request_by_public_id(session, candidate) is None:
            return candidate


def add_message(
    session: Session,
    *,
    sr: ServiceRequest,
    raw: StoredMail | None,
    mail: ParsedMail,
    author_kind: str,
    reply_text: str,
    language: str | None,
    now: datetime,
) -> Message:
    message = Message(
        sr_id=sr.id,
        raw_mail_id=raw.id if raw else None,
        direction="in",
        author_kind=author_kind,
        author_address=mail.from_addr,
        author_name=mail.from_name[:200],
        message_id=mail.message_id,
        subject=mail.subject,
        text=mail.text,
        reply_text=reply_text,
        html=mail.html,
        language=language,
        created_at=now,
    )
    session.add(message)
    session.flush()
    session.add_all(
        AttachmentRow(
            message_id=message.id,
            filename=a.filename,
            content_type=a.content_type[:255],
            size=a.size,
            sha256=a.sha256,
            data=a.data,
        )
        for a in mail.attachments
    )
    if mail.message_id:
        add_thread_ref(session, mail.message_id, sr.id)
    return message


def add_thread_ref(session: Session, message_id: str, sr_id: int) -> None:
    if session.get(ThreadRef, (message_id, sr_id)) is None:
        session.add(ThreadRef(message_id=message_id, sr_id=sr_id))


def add_deadline(
    session: Session, sr: ServiceRequest, kind: str, due: datetime, now: datetime
) -> None:
    session.add(Deadline(sr_id=sr.id, kind=kind, due_at=due, created_at=now))


# --- mail out ---------------------------------------------------------------------------------


def claim_delivery(session: Session, delivery_id: int, now: datetime) -> Delivery | None:
    """pending -> sending, atomically; None if another worker has it or it is done."""
    claimed = session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id, Delivery.status == "pending")
        .values(status="sending", claimed_at=now, attempts=Delivery.attempts + 1)
    )
    if getattr(claimed, "rowcount", 0) != 1:
        return None
    return session.get(Delivery, delivery_id, populate_existing=True)


def finish_delivery(
    session: Session, delivery_id: int, status: str, now: datetime, error: str = ""
) -> None:
    values: dict[str, Any] = {"status": status, "last_error": error[:2000]}
    if status == "sent":
        values["sent_at"] = now
    session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id, Delivery.status == "sending")
        .values(**values)
    )


def retry_delivery(session: Session, delivery_id: int, at: datetime, error: str) -> None:
    session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id, Delivery.status == "sending")
        .values(status="pending", next_attempt_at=at, enqueued_at=at, last_error=error[:2000])
    )


def release_stale_sending(session: Session, before: datetime) -> int:
    """Deliveries a killed worker left in `sending` go back to `pending`, to be enqueued at once."""
    result = session.execute(
        update(Delivery)
        .where(Delivery.status == "sending", Delivery.claimed_at < before)
        .values(
            status="pending",
            enqueued_at=None,
            last_error="released: a worker lost it while sending",
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


def take_due_deliveries(
    session: Session, now: datetime, requeue_after: timedelta, limit: int = 500
) -> list[tuple[int, str]]:
    """Pending Deliveries whose turn came and that no one enqueued lately; marks them enqueued."""
    rows = session.execute(
        select(Delivery.id, Delivery.queue)
        .where(
            Delivery.status == "pending",
            Delivery.next_attempt_at <= now,
            or_(Delivery.enqueued_at.is_(None), Delivery.enqueued_at <= now - requeue_after),
        )
        .order_by(Delivery.next_attempt_at)
        .limit(limit)
    ).all()
    ids = [row.id for row in rows]
    if ids:
        session.execute(update(Delivery).where(Delivery.id.in_(ids)).values(enqueued_at=now))
    return [(row.id, row.queue) for row in rows]


def deliveries_of(session: Session, ids: Iterable[int]) -> list[Delivery]:
    return list(session.scalars(select(Delivery).where(Delivery.id.in_(list(ids)))))
