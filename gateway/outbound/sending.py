"""The workers' side of the outbox: claim a Delivery, record how it went, take back those a lost
worker left, and find those a lost broker message left waiting."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, or_, select, update

from gateway.core.vocabulary import DeliveryStatus
from gateway.storage import blobs
from gateway.storage.tables import ATTACHMENTS, DELIVERIES, STORED
from parsers.large import decode


@dataclass(frozen=True)
class Claimed:
    """A Delivery a worker has claimed: everything needed to render, compose and send it."""

    id: int
    template: str
    audience: str
    language: str
    recipient: str
    context: dict[str, Any]
    message_id: str
    in_reply_to: str | None
    references: str
    auto_submitted: str
    attempts: int
    queue: str = "mail"  # outbox.QUEUES
    headers: dict[str, str] | None = None  # a bulletin's own fields (List-Id …)
    mail_from: str | None = None  # its envelope sender (VERP); None: the gateway's address


@dataclass(frozen=True)
class File:
    """A stored attachment, to go out with a Delivery."""

    filename: str
    content_type: str
    data: bytes


_CLAIMED = (
    DELIVERIES.c.id,
    DELIVERIES.c.template,
    DELIVERIES.c.audience,
    DELIVERIES.c.language,
    DELIVERIES.c.recipient,
    DELIVERIES.c.context,
    DELIVERIES.c.message_id,
    DELIVERIES.c.in_reply_to,
    DELIVERIES.c.references,
    DELIVERIES.c.auto_submitted,
    DELIVERIES.c.attempts,
    DELIVERIES.c.queue,
    DELIVERIES.c.headers,
    DELIVERIES.c.mail_from,
)
_CLAIM = (
    update(DELIVERIES)
    .where(DELIVERIES.c.id == bindparam("delivery_id"), DELIVERIES.c.status == "pending")
    .values(status="sending", claimed_at=bindparam("now"), attempts=DELIVERIES.c.attempts + 1)
    .returning(*_CLAIMED)
)
_FINISH = (
    update(DELIVERIES)
    .where(DELIVERIES.c.id == bindparam("delivery_id"), DELIVERIES.c.status == "sending")
    .values(status=bindparam("status"), sent_at=bindparam("sent_at"), last_error=bindparam("error"))
)


def claim_delivery(conn: Connection, delivery_id: int, now: datetime) -> Claimed | None:
    """pending -> sending, atomically; None if another worker has it or it is done."""
    row = conn.execute(_CLAIM, {"delivery_id": delivery_id, "now": now}).first()
    return Claimed(*row) if row is not None else None


def finish_delivery(
    conn: Connection, delivery_id: int, status: DeliveryStatus, now: datetime, error: str = ""
) -> None:
    conn.execute(
        _FINISH,
        {
            "delivery_id": delivery_id,
            "status": status,
            "sent_at": now if status == DeliveryStatus.sent else None,
            "error": error[:2000],
        },
    )


def retry_delivery(conn: Connection, delivery_id: int, at: datetime, error: str) -> None:
    conn.execute(
        update(DELIVERIES)
        .where(DELIVERIES.c.id == delivery_id, DELIVERIES.c.status == "sending")
        .values(status="pending", next_attempt_at=at, enqueued_at=at, last_error=error[:2000])
    )


# The state of Deliveries looked up by id: `status || ''` is the same value, but not a term
# SQLite's planner answers from the index on (status, next_attempt_at). Without statistics it
# took that index for `id IN (…) AND status = 'pending'` and walked every pending Delivery, all
# of a large bulletin's, for each ten ids, rather than look the ten up.
PENDING = DELIVERIES.c.status.concat("") == DeliveryStatus.pending.value

# --- bulletins (the bulk queue): sent at most once -------------------------------------------
# A bulk Delivery is never `sending`: a worker reads it, gives the relay all of the mail but the
# final dot, marks it sent (pending -> sent, atomically), and only then ends the data. A worker
# killed before the mark leaves it pending and the relay drops the unfinished mail (RFC 5321
# §4.1.1.4); killed after it, the mail is sent and marked so. Nobody gets it twice.


def pending_deliveries(conn: Connection, ids: list[int], now: datetime) -> list[Claimed]:
    """Those of `ids` still pending and due, in id order: what a bulk message has left to send."""
    rows = conn.execute(_PENDING_OF, {"ids": ids, "now": now}).all()
    return [Claimed(*row) for row in rows]


_PENDING_OF = (
    select(*_CLAIMED)
    .where(
        DELIVERIES.c.id.in_(bindparam("ids", expanding=True)),
        PENDING,
        DELIVERIES.c.next_attempt_at <= bindparam("now"),
    )
    .order_by(DELIVERIES.c.id)
)


_MARK_SENT = (
    update(DELIVERIES)
    .where(
        DELIVERIES.c.id.in_(bindparam("ids", expanding=True)),
        PENDING,
    )
    .values(
        status="sent",
        sent_at=bindparam("now"),
        claimed_at=bindparam("now"),
        attempts=DELIVERIES.c.attempts + 1,
        last_error="",
    )
    .returning(DELIVERIES.c.id)
)


def mark_sent(conn: Connection, ids: list[int], now: datetime) -> set[int]:
    """pending -> sent, in one statement; the ids marked (one not pending was sent by another
    worker, or cancelled)."""
    return set(conn.scalars(_MARK_SENT, {"ids": ids, "now": now}))


def refused(
    conn: Connection,
    delivery_id: int,
    *,
    marked: bool,
    error: str,
    retry_at: datetime | None,
) -> None:
    """A bulk mail the relay refused: again at `retry_at` (the sweep enqueues it then), or
    failed for good when None. `marked`: it was marked sent before the relay's answer."""
    values: dict[str, object] = {"last_error": error[:2000], "sent_at": None}
    if not marked:
        values["attempts"] = DELIVERIES.c.attempts + 1
    if retry_at is None:
        values["status"] = "failed"
    else:
        values.update(status="pending", next_attempt_at=retry_at, enqueued_at=None)
    status = "sent" if marked else "pending"
    conn.execute(
        update(DELIVERIES)
        .where(DELIVERIES.c.id == delivery_id, DELIVERIES.c.status == status)
        .values(**values)
    )


def note_error(conn: Connection, delivery_id: int, error: str) -> None:
    """What went wrong with a mail that stays as it is (a bulletin mail sent but unanswered)."""
    conn.execute(
        update(DELIVERIES).where(DELIVERIES.c.id == delivery_id).values(last_error=error[:2000])
    )


def release_stale_sending(conn: Connection, before: datetime) -> int:
    """Deliveries a killed worker left in `sending` go back to `pending`, to be enqueued at once."""
    result = conn.execute(
        update(DELIVERIES)
        .where(DELIVERIES.c.status == "sending", DELIVERIES.c.claimed_at < before)
        .values(
            status="pending",
            enqueued_at=None,
            last_error="released: a worker lost it while sending",
        )
    )
    return int(result.rowcount or 0)


def take_due_deliveries(
    conn: Connection,
    now: datetime,
    enqueued_before: datetime,
    limit: int = 500,
    *,
    leave_new_bulk: bool = False,
) -> list[tuple[int, str]]:
    """Pending Deliveries whose turn came and that were not enqueued since `enqueued_before`;
    marks them enqueued. `leave_new_bulk`: bulletin mail never tried and never claimed is left
    to the bulk processes (workers/puller.py), unless it was written before `enqueued_before`
    (no puller took it in all that time); a retry is still taken."""
    wanted = [
        DELIVERIES.c.status == "pending",
        DELIVERIES.c.next_attempt_at <= now,
        or_(DELIVERIES.c.enqueued_at.is_(None), DELIVERIES.c.enqueued_at < enqueued_before),
    ]
    if leave_new_bulk:
        wanted.append(
            or_(
                DELIVERIES.c.queue != "bulk",
                DELIVERIES.c.enqueued_at.is_not(None),
                DELIVERIES.c.attempts > 0,
                DELIVERIES.c.created_at < enqueued_before,
            )
        )
    rows = conn.execute(
        select(DELIVERIES.c.id, DELIVERIES.c.queue)
        .where(*wanted)
        .order_by(DELIVERIES.c.next_attempt_at)
        .limit(limit)
    ).all()
    ids = [row.id for row in rows]
    if ids:
        conn.execute(update(DELIVERIES).where(DELIVERIES.c.id.in_(ids)).values(enqueued_at=now))
    return [(row.id, row.queue) for row in rows]


_FILES = (
    select(
        ATTACHMENTS.c.filename,
        ATTACHMENTS.c.content_type,
        ATTACHMENTS.c.data,
        ATTACHMENTS.c.raw_mail_id,
        ATTACHMENTS.c.raw_start,
        ATTACHMENTS.c.raw_length,
        ATTACHMENTS.c.transfer_encoding,
    )
    .where(ATTACHMENTS.c.id.in_(bindparam("ids", expanding=True)))
    .order_by(ATTACHMENTS.c.id)
)
_LARGE_STORED = select(STORED.c.content.is_not(None)).where(STORED.c.id == bindparam("stored"))


def files(conn: Connection, ids: list[int]) -> list[File]:
    """The attachments `ids`, byte for byte: one kept in place decoded from its stored mail."""
    rows = conn.execute(_FILES, {"ids": ids}).all()
    return [File(row.filename, row.content_type, _content(conn, row)) for row in rows]


def _content(conn: Connection, row: Any) -> bytes:
    if row.raw_mail_id is None:
        return bytes(row.data)
    column = "content" if conn.scalar(_LARGE_STORED, {"stored": row.raw_mail_id}) else "data"
    encoded = blobs.read_slice(conn, STORED, column, row.raw_mail_id, row.raw_start, row.raw_length)
    return decode(encoded, row.transfer_encoding)  # as the parser decoded it (parsers/large.py)
