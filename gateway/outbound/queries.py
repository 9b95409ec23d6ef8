"""The statements that write the outbox: a Delivery, the Message-IDs that thread onto an SR, and
what a mail to the customer threads under (RFC 5322 §3.6.4)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, select, update

from gateway.core.values import columns
from gateway.core.vocabulary import Audience, DeliveryStatus
from gateway.storage.tables import ATTACHMENTS, DELIVERIES, MESSAGES, THREAD_REFS, insert_ignore


@dataclass(frozen=True)
class NewDelivery:
    """One outgoing mail as the outbox keeps it (deliveries): written in the deciding
    transaction, sent after the commit."""

    sr_id: int | None
    raw_mail_id: int | None
    template: str
    audience: Audience
    language: str
    recipient: str
    context: dict[str, Any]
    message_id: str
    in_reply_to: str | None
    references: str
    auto_submitted: str
    queue: str
    next_attempt_at: datetime
    created_at: datetime
    status: DeliveryStatus = DeliveryStatus.pending
    attempts: int = 0
    enqueued_at: datetime | None = None  # when it was handed to the broker (the sweep looks)
    claimed_at: datetime | None = None
    sent_at: datetime | None = None
    last_error: str = ""
    headers: dict[str, str] | None = None  # a bulletin's List-* fields (workers/composer.py)
    mail_from: str | None = None  # its VERP envelope sender; None: the gateway's address


@dataclass(frozen=True)
class AttachmentInfo:
    """A stored attachment without its bytes."""

    id: int
    filename: str
    content_type: str
    size: int


_ADD_DELIVERY = insert(DELIVERIES).returning(DELIVERIES.c.id)
_ADD_THREAD_REF = insert_ignore(THREAD_REFS)


def add_delivery(conn: Connection, delivery: NewDelivery) -> int:
    return int(conn.execute(_ADD_DELIVERY, columns(delivery)).scalar_one())


def add_deliveries(conn: Connection, deliveries: list[NewDelivery]) -> list[int]:
    """Many Deliveries in one statement; their ids in the order given."""
    if not deliveries:
        return []
    rows = conn.execute(
        insert(DELIVERIES).returning(DELIVERIES.c.id, sort_by_parameter_order=True),
        [columns(d) for d in deliveries],
    )
    return [int(i) for i in rows.scalars()]


def set_mail_from(conn: Connection, senders: list[tuple[int, str]]) -> None:
    """Each Delivery's envelope sender, once its id (which a VERP address names) is known."""
    if senders:
        conn.execute(
            update(DELIVERIES)
            .where(DELIVERIES.c.id == bindparam("delivery_id"))
            .values(mail_from=bindparam("sender")),
            [{"delivery_id": i, "sender": s} for i, s in senders],
        )


def delete_deliveries(conn: Connection, ids: list[int]) -> None:
    """Deliveries written in this transaction that turned out not to be wanted (never sent)."""
    if ids:
        conn.execute(delete(DELIVERIES).where(DELIVERIES.c.id.in_(ids)))


def add_thread_ref(conn: Connection, message_id: str, sr_id: int) -> None:
    """A Message-ID received or sent on an SR: replies to it thread onto the SR (R1.6)."""
    conn.execute(_ADD_THREAD_REF[conn.dialect.name], {"message_id": message_id, "sr_id": sr_id})


def thread_of(conn: Connection, sr_id: int) -> tuple[str | None, list[str]]:
    """For a mail to the customer: the newest customer Message-ID, and the thread's IDs in order.

    The thread is every mail the customer sent on the SR and every mail sent to the customer.
    """
    inbound = conn.execute(
        select(MESSAGES.c.message_id, MESSAGES.c.created_at).where(
            MESSAGES.c.sr_id == sr_id,
            MESSAGES.c.author_kind == "contact",
            MESSAGES.c.message_id.is_not(None),
        )
    ).all()
    outbound = conn.execute(
        select(DELIVERIES.c.message_id, DELIVERIES.c.created_at).where(
            DELIVERIES.c.sr_id == sr_id, DELIVERIES.c.audience == Audience.customer
        )
    ).all()
    ordered = sorted([*inbound, *outbound], key=lambda r: r.created_at)
    latest = max(inbound, key=lambda r: r.created_at).message_id if inbound else None
    return latest, [r.message_id for r in ordered]


def attachment_list(conn: Connection, message_id: int) -> list[AttachmentInfo]:
    """A stored message's attachments, in their order."""
    rows = conn.execute(
        select(
            ATTACHMENTS.c.id,
            ATTACHMENTS.c.filename,
            ATTACHMENTS.c.content_type,
            ATTACHMENTS.c.size,
        )
        .where(ATTACHMENTS.c.message_id == message_id)
        .order_by(ATTACHMENTS.c.id)
    )
    return [AttachmentInfo(int(i), str(name), str(kind), int(size)) for i, name, kind, size in rows]
