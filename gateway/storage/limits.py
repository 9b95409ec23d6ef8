"""The limits every process shares, as single atomic statements (INSERT … ON CONFLICT DO UPDATE
… WHERE): on PostgreSQL two listeners counting the same sender wait on the row, and the second
sees what the first wrote; on SQLite writers are one at a time anyway."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, case, delete, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql import Insert

from gateway.storage.tables import NOTICE_LIMITS, SENDER_RATES

_INSERT = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def _upsert(conn: Connection, table: Any) -> Any:
    insert: Any = _INSERT[conn.dialect.name]
    return insert(table)


def count_sender(
    conn: Connection, sender: str, now: datetime, window: timedelta, limit: int
) -> datetime | None:
    """R6.1: count one mail of `sender`. None if it is within `limit` mails of its window (a
    window starts with the first mail after the last one ended); else when the window began."""
    rates = SENDER_RATES.c
    ended = rates.window_start <= now - window
    statement: Insert = (
        _upsert(conn, SENDER_RATES)
        .values(sender=sender, window_start=now, mails=1)
        .on_conflict_do_update(
            index_elements=[rates.sender],
            set_={
                "mails": case((ended, 1), else_=rates.mails + 1),
                "window_start": case((ended, now), else_=rates.window_start),
            },
            where=or_(ended, rates.mails < limit),
        )
        .returning(rates.mails)
    )
    if conn.execute(statement).first() is not None:
        return None
    started: datetime | None = conn.execute(
        select(rates.window_start).where(rates.sender == sender)
    ).scalar()
    return started or now


def forget_senders(conn: Connection, before: datetime) -> int:
    """Windows that ended before `before` (their senders start afresh anyway)."""
    result = conn.execute(delete(SENDER_RATES).where(SENDER_RATES.c.window_start < before))
    return int(result.rowcount or 0)


def claim_notice(
    conn: Connection, recipient: str, template: str, now: datetime, since: datetime
) -> bool:
    """R1.8: whether `recipient` may get `template` now (none since `since`); if so it is
    recorded, in the caller's transaction, so that no other process sends one too."""
    limits = NOTICE_LIMITS.c
    statement: Insert = (
        _upsert(conn, NOTICE_LIMITS)
        .values(recipient=recipient, template=template, sent_at=now)
        .on_conflict_do_update(
            index_elements=[limits.recipient, limits.template],
            set_={"sent_at": now},
            where=limits.sent_at <= since,
        )
        .returning(limits.sent_at)
    )
    return conn.execute(statement).first() is not None
