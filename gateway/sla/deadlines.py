"""The consequences of the service-level Deadlines, one handler per kind (R3.3, §3.5.4, §3.5.5):
a target's warning and breach, the not-updated alert, the Director escalation, the daily progress
review and TAM digest. The clock (gateway/clock.py) calls them in its transaction."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TypedDict

from sqlalchemy import Connection

from gateway.core.runtime import Runtime
from gateway.core.vocabulary import State
from gateway.observe import metrics
from gateway.outbound.contexts.oversight import NotUpdated, TargetAlert
from gateway.outbound.notices import alert
from gateway.sla import escalations, reviews, service_levels
from gateway.sla.queries import DeadlineRow, ensure_job, set_deadline
from gateway.storage.records import RequestRow, request_row

Deliveries = list[tuple[int, str]]
Handler = Callable[[Connection, Runtime, DeadlineRow, datetime], Deliveries]
LABELS = {
    "initial_response": "Initial Response",
    "sow_response": "Statement of Work response",
    "scheduling": "Scheduling",
}


def prepare(conn: Connection, rt: Runtime, now: datetime) -> None:
    """The daily jobs scheduled (once, whichever clock starts first)."""
    settings = rt.settings
    for kind, at in DAILY.items():
        due = reviews.next_daily(getattr(settings, at), settings.soc_timezone, now)
        ensure_job(conn, kind, due, now)


def _target(conn: Connection, rt: Runtime, row: DeadlineRow, now: datetime) -> Deliveries:
    """A target's warning (about to be missed) or breach (missed) to the SOC queue (R3.3)."""
    sr = _request_of(conn, row)
    if sr.state == State.closed:
        set_deadline(conn, row.id, next_at=None)
        return []
    breach = row.due_at <= now
    if not breach and row.warned_at is None:
        set_deadline(conn, row.id, warned_at=now, next_at=row.due_at)
        template, event = "target_warning", "warned"
    else:
        set_deadline(conn, row.id, breached_at=now, next_at=None)
        template, event = "target_breached", "breached"
    metrics.DEADLINES.labels(kind=row.kind, event=event).inc()
    context = TargetAlert(
        **_sr(sr),
        target=LABELS.get(row.kind, row.kind),
        due_at=f"{row.due_at:%Y-%m-%d %H:%M} UTC",
        started_at=f"{row.started_at:%Y-%m-%d %H:%M} UTC",
        left=_span(row.due_at - now),
        over=_span(now - row.due_at),
    )
    return [_alert(conn, rt, sr, template, context, now)]


def _not_updated(conn: Connection, rt: Runtime, row: DeadlineRow, now: datetime) -> Deliveries:
    """§3.5.4: an open SR without a SOC update for its interval; asked again each interval."""
    sr = _request_of(conn, row)
    if sr.state != State.open:
        set_deadline(conn, row.id, next_at=None)
        return []
    interval = timedelta(hours=rt.settings.update_interval(sr.priority))
    set_deadline(conn, row.id, breached_at=now, next_at=now + interval, due_at=now + interval)
    metrics.DEADLINES.labels(kind=row.kind, event="breached").inc()
    last = sr.last_soc_update_at
    context = NotUpdated(
        **_sr(sr),
        interval=f"{interval.total_seconds() / 3600:g} hours",
        last_update=f"{last:%Y-%m-%d %H:%M} UTC" if last else "none yet",
        since=_span(now - (last or sr.created_at)),
    )
    return [_alert(conn, rt, sr, "not_updated", context, now)]


def _request_of(conn: Connection, row: DeadlineRow) -> RequestRow:
    if row.sr_id is None:
        raise DeadlineWithoutRequest(f"{row.kind} deadline {row.id} names no SR")
    return request_row(conn, row.sr_id)


class DeadlineWithoutRequest(LookupError):
    """A target's or not-updated Deadline is always an SR's; this says one was not."""


def _director(conn: Connection, rt: Runtime, row: DeadlineRow, now: datetime) -> Deliveries:
    set_deadline(conn, row.id, breached_at=now, next_at=None)
    metrics.DEADLINES.labels(kind=row.kind, event="breached").inc()
    if row.escalation_id is None:  # a Director clock always belongs to an escalation
        return []
    return escalations.escalate_to_director(conn, rt, row.escalation_id, now)


def _daily(job: Callable[[Connection, Runtime, datetime], Deliveries], at: str) -> Handler:
    def run(conn: Connection, rt: Runtime, row: DeadlineRow, now: datetime) -> Deliveries:
        following = reviews.next_daily(getattr(rt.settings, at), rt.settings.soc_timezone, now)
        set_deadline(conn, row.id, started_at=now, due_at=following, next_at=following)
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
    sr: RequestRow,
    template: str,
    context: TargetAlert | NotUpdated,
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


class _OnTheClock(TypedDict):
    sr_id: str
    title: str
    customer: str
    priority: int
    state: str
    assigned_to: str
    type: str


def _sr(sr: RequestRow) -> _OnTheClock:
    return _OnTheClock(
        sr_id=sr.public_id,
        title=sr.title,
        customer=sr.customer,
        priority=sr.priority,
        state=sr.state,
        assigned_to=sr.assigned_to or "",
        type=sr.type,
    )


def _span(delta: timedelta) -> str:
    minutes = max(0, int(delta.total_seconds() // 60))
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"
