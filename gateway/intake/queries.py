"""The statements intake needs: the stored mail (added, found by its key, given its outcome),
the SRs a mail names or answers, and the counts behind the limits on automatic replies (R6.1)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, case, func, insert, select

from gateway.core.values import columns
from gateway.core.vocabulary import State, StoredStatus
from gateway.requests.decision import Thread
from gateway.storage import blobs
from gateway.storage.tables import DELIVERIES, REQUESTS, STORED, THREAD_REFS


@dataclass(frozen=True)
class NewStoredMail:
    """A mail as it is kept, byte for byte, with its envelope and its outcome (raw_mails)."""

    dedup_key: str
    message_id: str | None
    source: str
    mail_from: str | None
    peer: str | None
    helo: str | None
    rcpt_tos: list[str]
    sender: str
    subject: str
    size: int
    data: bytes
    status: StoredStatus
    reason: str
    received_at: datetime
    authentication: dict[str, Any] | None
    failed_recipients: list[str] | None


@dataclass(frozen=True)
class StoredRow:
    """A stored mail read back: what running it through intake again needs."""

    id: int
    status: StoredStatus
    data: bytes
    source: str
    mail_from: str | None
    rcpt_tos: tuple[str, ...]
    peer: str | None
    helo: str | None


_STORED_BY_KEY = select(STORED.c.id).where(STORED.c.dedup_key == bindparam("key"))
_ADD_STORED = insert(STORED).returning(STORED.c.id)
_ADD_LARGE_STORED = insert(STORED).values(data=b"").returning(STORED.c.id)
_STORED_ROW = select(
    STORED.c.id,
    STORED.c.status,
    func.coalesce(STORED.c.content, STORED.c.data).label("data"),
    STORED.c.source,
    STORED.c.mail_from,
    STORED.c.rcpt_tos,
    STORED.c.peer,
    STORED.c.helo,
).where(STORED.c.id == bindparam("stored_id"))
_NOTICES_SINCE = (
    select(func.count())
    .select_from(DELIVERIES)
    .where(
        DELIVERIES.c.recipient == bindparam("recipient"),
        DELIVERIES.c.template == bindparam("template"),
        DELIVERIES.c.created_at >= bindparam("since"),
    )
)
_AUTOREPLIES_TO = select(
    func.count(),
    func.coalesce(func.sum(case((DELIVERIES.c.created_at >= bindparam("hour"), 1), else_=0)), 0),
).where(
    DELIVERIES.c.recipient == bindparam("recipient"),
    DELIVERIES.c.auto_submitted == "auto-replied",
    DELIVERIES.c.created_at >= bindparam("day"),
)
_AUTOREPLIES_ABOUT = (
    select(func.count())
    .select_from(DELIVERIES)
    .where(
        DELIVERIES.c.sr_id == bindparam("sr_id"),
        DELIVERIES.c.auto_submitted == "auto-replied",
        DELIVERIES.c.created_at >= bindparam("since"),
    )
)
_THREAD_COLUMNS = (
    REQUESTS.c.id,
    REQUESTS.c.public_id,
    REQUESTS.c.state,
    REQUESTS.c.customer_id,
    REQUESTS.c.title,
    REQUESTS.c.priority,
)


def stored_id(conn: Connection, dedup_key: str) -> int | None:
    return conn.scalar(_STORED_BY_KEY, {"key": dedup_key})


def add_stored(conn: Connection, mail: NewStoredMail) -> int:
    """The mail's row; one over blobs.LARGE has its bytes in `content`, written in pieces."""
    values = columns(mail)
    if len(mail.data) > blobs.LARGE:
        values["content"] = values.pop("data")
        return blobs.insert_large(conn, _ADD_LARGE_STORED, STORED, "content", values)
    return int(conn.execute(_ADD_STORED, values).scalar_one())


def stored_row(conn: Connection, stored: int) -> StoredRow | None:
    row = conn.execute(_STORED_ROW, {"stored_id": stored}).first()
    if row is None:
        return None
    return StoredRow(
        row.id,
        StoredStatus(row.status),
        bytes(row.data),
        row.source,
        row.mail_from,
        tuple(row.rcpt_tos),
        row.peer,
        row.helo,
    )


def set_outcome(
    conn: Connection,
    stored: int,
    status: StoredStatus,
    *,
    reason: str | None = None,
    dedup_key: str | None = None,
    authentication: dict[str, Any] | None = None,
) -> None:
    """A stored mail's new status; with `reason`, the outcome of a run through intake again."""
    values: dict[str, Any] = {"status": status}
    if reason is not None:
        values.update(reason=reason, dedup_key=dedup_key, authentication=authentication)
    conn.execute(STORED.update().where(STORED.c.id == stored).values(values))


def requests_named(conn: Connection, public_ids: Sequence[str]) -> list[Thread]:
    """The SRs of these SR IDs, in the order given."""
    if not public_ids:
        return []
    rows = conn.execute(select(*_THREAD_COLUMNS).where(REQUESTS.c.public_id.in_(public_ids)))
    order = {p: i for i, p in enumerate(public_ids)}
    return sorted((_thread(*row) for row in rows), key=lambda t: order[t.public_id])


def requests_answered(conn: Connection, message_ids: Sequence[str]) -> list[Thread]:
    """The SRs of the Message-IDs the gateway received or sent, in the order of `message_ids`."""
    if not message_ids:
        return []
    wanted = list(message_ids)[:100]
    rows = conn.execute(
        select(THREAD_REFS.c.message_id, *_THREAD_COLUMNS)
        .join(REQUESTS, REQUESTS.c.id == THREAD_REFS.c.sr_id)
        .where(THREAD_REFS.c.message_id.in_(wanted))
    ).all()
    order = {m: i for i, m in enumerate(wanted)}
    return [_thread(*row[1:]) for row in sorted(rows, key=lambda r: order[r.message_id])]


def _thread(
    sr_id: int, public_id: str, state: str, customer_id: int, title: str, priority: int
) -> Thread:
    return Thread(sr_id, public_id, State(state), customer_id, title, priority)


def notices_since(conn: Connection, recipient: str, template: str, since: datetime) -> int:
    params = {"recipient": recipient, "template": template, "since": since}
    return conn.scalar(_NOTICES_SINCE, params) or 0


def autoreplies_to(
    conn: Connection, recipient: str, hour: datetime, day: datetime
) -> tuple[int, int]:
    """Automatic replies to `recipient` since `hour` and since `day`."""
    day_count, hour_count = conn.execute(
        _AUTOREPLIES_TO, {"recipient": recipient, "hour": hour, "day": day}
    ).one()
    return int(hour_count), int(day_count)


def autoreplies_about(conn: Connection, sr_id: int, since: datetime) -> int:
    return conn.scalar(_AUTOREPLIES_ABOUT, {"sr_id": sr_id, "since": since}) or 0
