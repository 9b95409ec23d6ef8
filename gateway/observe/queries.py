"""What a scrape reads from the database: the oldest waiting Delivery of each queue, and the
oldest Deadline the clock has not handled yet (its lag, whichever clock is running)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, func, select

from gateway.storage.tables import DEADLINES, DELIVERIES

_OLDEST_WAITING = (
    select(DELIVERIES.c.queue, func.min(DELIVERIES.c.created_at))
    .where(DELIVERIES.c.status.in_(("pending", "sending")))
    .group_by(DELIVERIES.c.queue)
)


def oldest_waiting(conn: Connection) -> dict[str, datetime]:
    """Queue -> when its oldest Delivery not yet sent (or failed) was written."""
    return {queue: created for queue, created in conn.execute(_OLDEST_WAITING) if created}


def oldest_due(conn: Connection, now: datetime) -> datetime | None:
    """The earliest next_at that has passed: a Deadline no clock has handled yet."""
    found = conn.execute(select(func.min(DEADLINES.c.next_at)).where(DEADLINES.c.next_at <= now))
    value: datetime | None = found.scalar()
    return value
