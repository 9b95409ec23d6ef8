"""The statements of the quarterly job's Deadline: scheduled once, moved on after each run."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, update

from gateway.storage.tables import DEADLINES, insert_ignore

_ADD_JOB = insert_ignore(DEADLINES)


def ensure_job(conn: Connection, kind: str, due: datetime, now: datetime) -> None:
    """The job's single row (a unique index on the kind of SR-less Deadlines keeps it single
    when two clocks start together)."""
    conn.execute(
        _ADD_JOB[conn.dialect.name],
        {
            "sr_id": None,
            "escalation_id": None,
            "kind": kind,
            "started_at": now,
            "due_at": due,
            "warn_at": None,
            "next_at": due,
            "created_at": now,
        },
    )


def move_job(conn: Connection, deadline_id: int, ran: datetime, following: datetime) -> None:
    conn.execute(
        update(DEADLINES)
        .where(DEADLINES.c.id == deadline_id)
        .values(started_at=ran, due_at=following, next_at=following)
    )
