"""Bulletins pulled from the database by bulk processes (workers/puller.py): their claims.

On the embedded default the broker is in-process, so a second process cannot be handed ids: it
claims them. A fan-out in a gateway that runs bulk processes writes its Deliveries with no
enqueued_at; a puller claims fifty at a time by setting it (one UPDATE under the write lock, so
no two pullers get the same), walking up the ids from where its last claim ended. One that a
puller claimed and lost (killed) is enqueued again by the sweep after requeue_after.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, bindparam, func, select, update

from gateway.outbound.sending import PENDING
from gateway.storage.tables import DELIVERIES

_UNCLAIMED_BULK = (
    DELIVERIES.c.queue == "bulk",
    DELIVERIES.c.enqueued_at.is_(None),
    DELIVERIES.c.next_attempt_at <= bindparam("now"),
)
_UNCLAIMED = (PENDING, *_UNCLAIMED_BULK)  # looked up by id
_UNCLAIMED_BY_STATE = (DELIVERIES.c.status == "pending", *_UNCLAIMED_BULK)  # through the index
# The conditions again outside the subquery: on PostgreSQL a claim that waited for another's
# row locks checks only the outer WHERE again (READ COMMITTED), and would take what the other
# took. (Not SKIP LOCKED in the subquery: PostgreSQL may run it again for the outer rows, each
# run skipping what the last one locked, and claim past the LIMIT.) SQLite has one writer.
_CLAIM_BULK = (
    update(DELIVERIES)
    .where(
        DELIVERIES.c.id.in_(
            select(DELIVERIES.c.id)
            .where(DELIVERIES.c.id > bindparam("after"), *_UNCLAIMED)
            .order_by(DELIVERIES.c.id)
            .limit(bindparam("limit"))
            .scalar_subquery()
        ),
        *_UNCLAIMED,
    )
    .values(enqueued_at=bindparam("now"))
    .returning(DELIVERIES.c.id)
)
# the lowest unclaimed one, through the index on (status, next_attempt_at): when the pullers
# are idle few are pending, and this finds where a new bulletin's mails begin
_FIRST_UNCLAIMED = select(func.min(DELIVERIES.c.id)).where(*_UNCLAIMED_BY_STATE)
_ANY_UNCLAIMED = select(DELIVERIES.c.id).where(*_UNCLAIMED_BY_STATE).limit(1)


def claim_bulk(conn: Connection, now: datetime, after: int, limit: int) -> list[int]:
    """Up to `limit` unclaimed bulk Deliveries above id `after`, claimed; their ids in order."""
    rows = conn.scalars(_CLAIM_BULK, {"now": now, "after": after, "limit": limit})
    return sorted(int(i) for i in rows)


def any_unclaimed_bulk(conn: Connection, now: datetime) -> bool:
    """Whether some bulletin mail waits for a puller: the first found, not the lowest."""
    return conn.scalar(_ANY_UNCLAIMED, {"now": now}) is not None


def first_unclaimed_bulk(conn: Connection, now: datetime) -> int | None:
    """The lowest id a puller could claim now; None when there is none."""
    found = conn.scalar(_FIRST_UNCLAIMED, {"now": now})
    return int(found) if found is not None else None
