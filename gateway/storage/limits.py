"""The limits every process shares, as single atomic statements (INSERT … ON CONFLICT DO UPDATE
… WHERE): on PostgreSQL two listeners counting the same sender wait on the row, and the second
sees what the first wrote; on SQLite writers are one at a time anyway. The same windowed count
serves SMTP senders (R6.1) and the admin web's sign-in attempts."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, case, delete, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql import Insert

from gateway.storage.tables import NOTICE_LIMITS, SENDER_RATES, SIGNIN_ATTEMPTS

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
    return _count(conn, rates.sender, rates.mails, rates.window_start, sender, now, window, limit)


def count_signin(
    conn: Connection, key: str, now: datetime, window: timedelta, limit: int
) -> datetime | None:
    """Count one sign-in attempt of `key` (`address:…` or `ip:…`), as `count_sender` counts
    mails: None if it is within `limit`, else when its window began."""
    tries = SIGNIN_ATTEMPTS.c
    return _count(conn, tries.key, tries.attempts, tries.window_start, key, now, window, limit)


def forget_signin(conn: Connection, key: str) -> None:
    """An admin who proved who they are starts afresh (their address's window only)."""
    conn.execute(delete(SIGNIN_ATTEMPTS).where(SIGNIN_ATTEMPTS.c.key == key))


def forget_signins(conn: Connection, before: datetime) -> int:
    """Windows that began before `before` (their keys start afresh anyway)."""
    table = SIGNIN_ATTEMPTS
    result = conn.execute(delete(table).where(table.c.window_start < before))
    return int(result.rowcount or 0)


def _count(
    conn: Connection,
    key_column: Any,
    count_column: Any,
    start_column: Any,
    key: str,
    now: datetime,
    window: timedelta,
    limit: int,
) -> datetime | None:
    table = key_column.table
    ended = start_column <= now - window
    statement: Insert = (
        _upsert(conn, table)
        .values({key_column.name: key, start_column.name: now, count_column.name: 1})
        .on_conflict_do_update(
            index_elements=[key_column],
            set_={
                count_column.name: case((ended, 1), else_=count_column + 1),
                start_column.name: case((ended, now), else_=start_column),
            },
            where=or_(ended, count_column < limit),
        )
        .returning(count_column)
    )
    if conn.execute(statement).first() is not None:
        return None
    started: datetime | None = conn.execute(select(start_column).where(key_column == key)).scalar()
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
