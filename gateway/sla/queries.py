"""The statements of the clocks: a Deadline armed, read, moved on, and found due (R3.3)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from enum import Enum
from typing import Any

from sqlalchemy import Connection, insert, select, update

from gateway.core.values import columns
from gateway.storage.tables import DEADLINES, insert_ignore


class _Keep(Enum):
    KEEP = "keep"


KEEP = _Keep.KEEP  # a column `set_deadline` leaves as it is
Moment = datetime | None | _Keep


@dataclass(frozen=True)
class DeadlineRow:
    """One running clock as stored (see storage/models/clocks.py `Deadline`)."""

    id: int
    sr_id: int | None
    escalation_id: int | None
    kind: str
    started_at: datetime
    due_at: datetime
    warn_at: datetime | None
    warned_at: datetime | None
    breached_at: datetime | None
    met_at: datetime | None
    next_at: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class NewDeadline:
    sr_id: int | None
    escalation_id: int | None
    kind: str
    started_at: datetime
    due_at: datetime
    warn_at: datetime | None
    next_at: datetime | None
    created_at: datetime
    warned_at: datetime | None = None
    breached_at: datetime | None = None
    met_at: datetime | None = None
    session_id: int | None = None  # a SecureHands session's own target (scheduling, §3.11.5)


_COLUMNS = [DEADLINES.c[f.name] for f in fields(DeadlineRow)]
_ADD = insert(DEADLINES).returning(DEADLINES.c.id)
_ADD_JOB = insert_ignore(DEADLINES)


def _row(row: Any) -> DeadlineRow:
    return DeadlineRow(*row)


def add_deadline(conn: Connection, deadline: NewDeadline) -> int:
    return int(conn.execute(_ADD, columns(deadline)).scalar_one())


_ADD_MANY = insert(DEADLINES)


def add_deadlines(conn: Connection, deadlines: Sequence[NewDeadline]) -> None:
    """Several Deadlines in one statement (a new SR's clocks)."""
    conn.execute(_ADD_MANY, [columns(d) for d in deadlines])


def open_deadlines(conn: Connection, sr_id: int, kinds: Sequence[str]) -> list[DeadlineRow]:
    """Deadlines of an SR still running (not met), of the given kinds."""
    rows = conn.execute(
        select(*_COLUMNS).where(
            DEADLINES.c.sr_id == sr_id,
            DEADLINES.c.kind.in_(list(kinds)),
            DEADLINES.c.met_at.is_(None),
        )
    )
    return [_row(row) for row in rows]


def set_deadline(
    conn: Connection,
    deadline_id: int,
    *,
    started_at: datetime | _Keep = KEEP,
    due_at: datetime | _Keep = KEEP,
    warn_at: Moment = KEEP,
    warned_at: Moment = KEEP,
    breached_at: Moment = KEEP,
    met_at: Moment = KEEP,
    next_at: Moment = KEEP,
) -> None:
    """Move a clock on: each column given is set (None clears it), the others are kept."""
    given = {
        "started_at": started_at,
        "due_at": due_at,
        "warn_at": warn_at,
        "warned_at": warned_at,
        "breached_at": breached_at,
        "met_at": met_at,
        "next_at": next_at,
    }
    values = {name: value for name, value in given.items() if value is not KEEP}
    conn.execute(update(DEADLINES).where(DEADLINES.c.id == deadline_id).values(values))


def due_deadlines(conn: Connection, now: datetime, limit: int) -> list[DeadlineRow]:
    """Deadlines the clock must act on now, locked for this transaction (other clocks skip them)."""
    rows = conn.execute(
        select(*_COLUMNS)
        .where(DEADLINES.c.next_at <= now)
        .order_by(DEADLINES.c.next_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [_row(row) for row in rows]


def ensure_job(conn: Connection, kind: str, due: datetime, now: datetime) -> None:
    """A daily job's single row (a unique index keeps it single when two clocks start together)."""
    job = NewDeadline(None, None, kind, now, due, None, due, now)
    conn.execute(_ADD_JOB[conn.dialect.name], columns(job))
