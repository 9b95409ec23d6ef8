"""An admin sends a failed Delivery again (`gateway deliveries retry`, the admin web): back to
pending with its attempts counted afresh, enqueued after the commit like any other."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, update

from gateway.storage.tables import DELIVERIES


class NotFailed(ValueError):
    """Only a failed Delivery is sent again (a pending one is on its way, a sent one arrived)."""


def retry_failed(conn: Connection, delivery_id: int, now: datetime, by: str) -> tuple[int, str]:
    """failed -> pending, due now; returns (id, queue) to enqueue once committed. Its last
    error stays, with who asked for the retry, until the next attempt writes its own."""
    d = DELIVERIES.c
    row = conn.execute(
        update(DELIVERIES)
        .where(d.id == delivery_id, d.status == "failed")
        .values(
            status="pending",
            attempts=0,
            next_attempt_at=now,
            enqueued_at=now,
            claimed_at=None,
            last_error=("retried by " + by[:300] + "; was: " + d.last_error),
        )
        .returning(d.id, d.queue)
    ).first()
    if row is None:
        raise NotFailed(f"no failed delivery {delivery_id}")
    return int(row.id), str(row.queue)
