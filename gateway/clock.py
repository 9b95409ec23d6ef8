"""The clock: take the Deadlines that are due and turn each into its consequence, exactly once.

Warnings and breaches of targets (R3.3), not-updated alerts (§3.5.4), Director escalations
(§3.5.5), the daily progress review and TAM digest. Each Deadline is handled in the transaction
that writes its mails and moves it on; on PostgreSQL the rows are taken FOR UPDATE SKIP LOCKED,
so several clocks may run side by side and none acts twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from gateway import escalations, reviews, service_levels, store
from gateway.db import transaction
from gateway.notices import alert
from gateway.runtime import Runtime

log = logging.getLogger(__name__)
Deliveries = list[tuple[int, str]]
Handler = Callable[[Connection, Runtime, Any, datetime], Deliveries]
BATCH = 500  # Deadlines per transaction
LABELS = {
    "initial_response": "Initial Response",
    "sow_response": "Statement of Work response",
    "scheduling": "Scheduling",
}


def tick(rt: Runtime, limit: int = BATCH) -> int:
    """Handle what is due now; returns how many Deadlines were handled."""
    now = rt.now()
    with transaction(rt.sessions) as conn:
        rows = store.due_deadlines(conn, now, limit)
        deliveries: Deliveries = []
        for row in rows:
            deliveries += HANDLERS[row.kind](conn, rt, row, now)
    rt.outbox.enqueue(deliveries)
    if rows:
        log.info("clock: %d due, %d mails", len(rows), len(deliveries))
    return len(rows)


def prepare(rt: Runtime) -> None:
    """Make sure the daily jobs are scheduled (once, whichever clock starts first)."""
    now = rt.now()
    settings = rt.settings
    with transaction(rt.sessions) as conn:
        for kind, at in DAILY.items():
            due = reviews.next_daily(getattr(settings, at), settings.soc_timezone, now)
            store.ensure_job(conn, kind, due, now)


def _target(conn: Connection, rt: Runtime, row: Any, now: datetime) -> Deliveries:
    """A target's warning (about to be missed) or breach (missed) to the SOC queue (R3.3)."""
    sr = store.request_row(conn, row.sr_id)
    if sr.state == "closed":
        store.set_deadline(conn, row.id, next_at=None)
        return []
    breach = row.due_at <= now
    if not breach and row.warned_at is None:
        store.set_deadline(conn, row.id, warned_at=now, next_at=row.due_at)
        template = "target_warning"
    else:
        store.set_deadline(conn, row.id, breached_at=now, next_at=None)
        template = "target_breached"
    context = {
        **_sr(sr),
        "target": LABELS.get(row.kind, row.kind),
        "due_at": f"{row.due_at:%Y-%m-%d %H:%M} UTC",
        "started_at": f"{row.started_at:%Y-%m-%d %H:%M} UTC",
        "left": _span(row.due_at - now),
        "over": _span(now - row.due_at),
    }
    return [_alert(conn, rt, sr, template, context, now)]


def _not_updated(conn: Connection, rt: Runtime, row: Any, now: datetime) -> Deliveries:
    """§3.5.4: an open SR without a SOC update for its interval; asked again each interval."""
    sr = store.request_row(conn, row.sr_id)
    if sr.state != "open":
        store.set_deadline(conn, row.id, next_at=None)
        return []
    interval = timedelta(hours=rt.settings.update_interval(sr.priority))
    store.set_deadline(conn, row.id, breached_at=now, next_at=now + interval, due_at=now + interval)
    last = sr.last_soc_update_at
    context = {
        **_sr(sr),
        "interval": f"{interval.total_seconds() / 3600:g} hours",
        "last_update": f"{last:%Y-%m-%d %H:%M} UTC" if last else "none yet",
        "since": _span(now - (last or sr.created_at)),
    }
    return [_alert(conn, rt, sr, "not_updated", context, now)]


def _director(conn: Connection, rt: Runtime, row: Any, now: datetime) -> Deliveries:
    store.set_deadline(conn, row.id, breached_at=now, next_at=None)
    return escalations.escalate_to_director(conn, rt, row.escalation_id, now)


def _daily(job: Callable[[Connection, Runtime, datetime], Deliveries], at: str) -> Handler:
    def run(conn: Connection, rt: Runtime, row: Any, now: datetime) -> Deliveries:
        following = reviews.next_daily(getattr(rt.settings, at), rt.settings.soc_timezone, now)
        store.set_deadline(conn, row.id, started_at=now, due_at=following, next_at=following)
        return job(conn, rt, now)

    return run


DAILY = {"progress_review": "review_time", "tam_digest": "tam_digest_time"}
HANDLERS: dict[str, Handler] = {
    **dict.fromkeys(service_levels.TARGET_KINDS, _target),
    "update": _not_updated,
    "escalation_director": _director,
    "progress_review": _daily(reviews.progress_review, "review_time"),
    "tam_digest": _daily(reviews.tam_digest, "tam_digest_time"),
}


def _alert(
    conn: Connection,
    rt: Runtime,
    sr: store.RequestRow,
    template: str,
    context: dict[str, Any],
    now: datetime,
) -> tuple[int, str]:
    return alert(
        conn,
        rt,
        template=template,
        recipient=rt.settings.soc_queue_address,
        context=context,
        now=now,
        sr_id=sr.id,
        label=sr.public_id,
    )


def _sr(sr: store.RequestRow) -> dict[str, Any]:
    return {
        "sr_id": sr.public_id,
        "title": sr.title,
        "customer": sr.customer,
        "priority": sr.priority,
        "state": sr.state,
        "assigned_to": sr.assigned_to or "",
        "type": sr.type,
    }


def _span(delta: timedelta) -> str:
    minutes = max(0, int(delta.total_seconds() // 60))
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"
