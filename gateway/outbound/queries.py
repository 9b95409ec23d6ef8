"""The statements that write the outbox: a Delivery, the Message-IDs that thread onto an SR, and
what a mail to the customer threads under (RFC 5322 §3.6.4)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Connection, delete, func, insert, select, text

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


def new_delivery_ids(conn: Connection, count: int) -> list[int]:
    """Ids for `count` Deliveries this transaction is about to write (`add_deliveries_as`), so
    that what names a Delivery (its VERP envelope sender) goes in with it, not in an UPDATE
    after it. PostgreSQL draws them from the table's sequence. On SQLite the transaction holds
    the database's one write lock from its start (storage/sqlite.py), so no other writer can
    take the ids above the largest, which are the ones SQLite itself would give."""
    if count <= 0:
        return []
    if conn.dialect.name == "postgresql":
        return [int(i) for i in conn.scalars(_NEXT_IDS, {"count": count})]
    top = int(conn.scalar(select(func.max(DELIVERIES.c.id))) or 0)
    return list(range(top + 1, top + 1 + count))


_NEXT_IDS = text(
    "SELECT nextval(pg_get_serial_sequence('deliveries', 'id')) FROM generate_series(1, :count)"
)


def add_deliveries_as(conn: Connection, deliveries: list[tuple[int, NewDelivery]]) -> None:
    """Deliveries under the ids `new_delivery_ids` gave. SQLite: one statement run for each (no
    RETURNING, so its text is short and the driver prepares it once). PostgreSQL: COPY."""
    if not deliveries:
        return
    rows = [{"id": i, **columns(d)} for i, d in deliveries]
    if conn.dialect.name == "postgresql":
        _copy(conn, rows)
        return
    conn.execute(insert(DELIVERIES), rows)


_COPY_NAMES = [column.name for column in DELIVERIES.columns]
_JSON_NAMES = frozenset(c.name for c in DELIVERIES.columns if isinstance(c.type, JSON))
_COPY = "COPY deliveries ({}) FROM STDIN".format(", ".join(f'"{n}"' for n in _COPY_NAMES))


def _copy(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """A fan-out batch's rows streamed with COPY, formatted by psycopg in C. Run one by one in
    psycopg's pipeline they made as many sends and waits, each taking the interpreter lock back
    from the worker threads sending mail in the same process: the fan-out went at a quarter of
    its speed alone. JSON columns go as text, as SQLAlchemy's JSON type writes them (None as
    JSON's null)."""
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    with cursor.copy(_COPY) as copy:
        for row in rows:
            copy.write_row(
                [json.dumps(row[n]) if n in _JSON_NAMES else _plain(row[n]) for n in _COPY_NAMES]
            )


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, StrEnum) else value


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
