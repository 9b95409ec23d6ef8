"""Step 7, service-level targets as a table (§3.5.3–§3.5.5, §3.11.5, §3.13.3), kept as Deadlines.

Each running target is a Deadline row: when it started, when it is due, when the SOC is warned
that it is about to be missed. A priority change recomputes them (R3.4).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection

from gateway.core.hours import PREMIUM, Calendar
from gateway.core.settings import Settings
from gateway.core.vocabulary import State
from gateway.sla.queries import (
    NewDeadline,
    add_deadline,
    add_deadlines,
    open_deadlines,
    set_deadline,
)
from gateway.storage.records import RequestRow

INCIDENT = "incident"
SECUREHANDS_TYPES = ("securehands", "technical_baseline_assessment")  # §3.12.1: TBA is SecureHands
SCAN = "vulnerability_assessment"


@dataclass(frozen=True)
class Target:
    """How long a clock runs, and on which Business Hours."""

    amount: timedelta
    standard_hours: bool  # True: Business Hours – Standard; False: Premium 24×7
    label: str  # how mails state it
    warn: bool = True  # the SOC is warned before it is missed (R3.3)


WORKING_HOURS_8 = Target(timedelta(hours=8), True, "8 working hours")
# (kind, request type or None for any, priority or None for any) -> target; most specific first.
TARGETS: dict[tuple[str, str | None, int | None], Target] = {
    # R3.2: SecureCall is Premium only (§2.1): incident targets run 24×7.
    ("initial_response", INCIDENT, 1): Target(timedelta(minutes=30), False, "30 minutes"),
    ("initial_response", INCIDENT, 2): Target(timedelta(hours=2), False, "2 hours"),
    ("initial_response", INCIDENT, 3): Target(timedelta(hours=24), False, "24 hours"),
    ("initial_response", INCIDENT, 4): Target(timedelta(days=2), False, "2 days"),
    # R3.5: SecureHands (German text of §3.11.5) and scans (§3.13.3) on Business Hours – Standard.
    ("initial_response", "securehands", None): WORKING_HOURS_8,
    ("initial_response", "technical_baseline_assessment", None): WORKING_HOURS_8,
    ("initial_response", SCAN, None): WORKING_HOURS_8,
    ("sow_response", "securehands", None): Target(timedelta(hours=16), True, "2 working days"),
    ("sow_response", "technical_baseline_assessment", None): Target(
        timedelta(hours=16), True, "2 working days"
    ),
    ("scheduling", None, None): Target(timedelta(hours=24), True, "3 working days"),
    # §3.5.5: still open after 3 days (24 hours for P1) goes to Director level.
    ("escalation_director", None, 1): Target(timedelta(hours=24), False, "24 hours", warn=False),
    ("escalation_director", None, None): Target(timedelta(days=3), False, "3 days", warn=False),
}
TARGET_KINDS = ("initial_response", "sow_response", "scheduling")
PRIORITY_KINDS = ("initial_response", "update", "escalation_director")  # recomputed on a change


def target(kind: str, request_type: str | None, priority: int, settings: Settings) -> Target:
    """The target of a clock; `update` (§3.5.4) comes from the per-priority settings."""
    if kind == "update":
        hours = settings.update_interval(priority)
        return Target(timedelta(hours=hours), False, f"{hours:g} hours", warn=False)
    for key in (
        (kind, request_type, priority),
        (kind, request_type, None),
        (kind, None, priority),
        (kind, None, None),
    ):
        if key in TARGETS:
            return TARGETS[key]
    raise KeyError(f"no {kind} target for {request_type} P{priority}")


def initial_response(request_type: str, priority: int, settings: Settings) -> Target:
    return target("initial_response", request_type, priority, settings)


def due_at(goal: Target, start: datetime, standard: Calendar) -> datetime:
    """When a target that starts at `start` falls due, on the calendar it runs on."""
    return _calendar(goal, standard).add_working_time(start, goal.amount)


def warn_at(goal: Target, start: datetime, standard: Calendar, fraction: float) -> datetime | None:
    """When `fraction` of the target's (working) time has passed: the SOC is warned (R3.3)."""
    if not goal.warn:
        return None
    return _calendar(goal, standard).add_working_time(start, goal.amount * fraction)


def _calendar(goal: Target, standard: Calendar) -> Calendar:
    return standard if goal.standard_hours else PREMIUM


# --- Deadlines --------------------------------------------------------------------------------


def arm(
    conn: Connection,
    settings: Settings,
    sr: RequestRow,
    kind: str,
    start: datetime,
    now: datetime,
    escalation_id: int | None = None,
    session_id: int | None = None,
) -> datetime:
    """Start a clock of `kind` on an SR (or on one of its escalations or sessions) at `start`;
    returns its due time."""
    deadline = _deadline(settings, sr, kind, start, now, escalation_id, session_id)
    add_deadline(conn, deadline)
    return deadline.due_at


def arm_all(
    conn: Connection,
    settings: Settings,
    sr: RequestRow,
    kinds: Sequence[str],
    start: datetime,
    now: datetime,
) -> dict[str, datetime]:
    """Start the clocks of `kinds` on an SR at `start`, in one statement; their due times."""
    deadlines = [_deadline(settings, sr, kind, start, now, None) for kind in kinds]
    add_deadlines(conn, deadlines)
    return {d.kind: d.due_at for d in deadlines}


def _deadline(
    settings: Settings,
    sr: RequestRow,
    kind: str,
    start: datetime,
    now: datetime,
    escalation_id: int | None,
    session_id: int | None = None,
) -> NewDeadline:
    goal = target(kind, sr.type, sr.priority, settings)
    due = due_at(goal, start, sr.calendar)
    warn = warn_at(goal, start, sr.calendar, settings.warn_at_fraction)
    return NewDeadline(
        sr_id=sr.id,
        escalation_id=escalation_id,
        kind=kind,
        started_at=start,
        due_at=due,
        warn_at=warn,
        next_at=warn or due,
        created_at=now,
        session_id=session_id,
    )


def applies(kind: str, request_type: str) -> bool:
    """Whether an SR of this type has a clock of this kind (§3.11.5, §3.13.3)."""
    if kind == "sow_response":
        return request_type in SECUREHANDS_TYPES
    if kind == "scheduling":
        return request_type in (*SECUREHANDS_TYPES, SCAN)
    return True


def retarget(conn: Connection, settings: Settings, sr: RequestRow, now: datetime) -> None:
    """R3.4: after a priority change, the running clocks that depend on it are recomputed."""
    for row in open_deadlines(conn, sr.id, PRIORITY_KINDS):
        goal = target(row.kind, sr.type, sr.priority, settings)
        due = due_at(goal, row.started_at, sr.calendar)
        warn = warn_at(goal, row.started_at, sr.calendar, settings.warn_at_fraction)
        # A warning or breach that now lies in the future may happen again, at its new time.
        warned = None if warn is not None and warn > now else row.warned_at
        breached = None if due > now else row.breached_at
        following = _next(warn, warned, due, breached)
        if row.next_at is None and row.kind == "update":
            following = None  # a paused update clock stays paused
        set_deadline(
            conn,
            row.id,
            due_at=due,
            warn_at=warn,
            warned_at=warned,
            breached_at=breached,
            next_at=following,
        )


def _next(
    warn: datetime | None, warned: datetime | None, due: datetime, breached: datetime | None
) -> datetime | None:
    if warn is not None and warned is None:
        return warn
    return due if breached is None else None


def meet(conn: Connection, sr_id: int, kind: str, now: datetime) -> bool:
    """A target is met: its clock stops. Returns whether one was running."""
    rows = open_deadlines(conn, sr_id, (kind,))
    for row in rows:
        set_deadline(conn, row.id, met_at=now, next_at=None)
    return bool(rows)


def stop_all(conn: Connection, sr_id: int) -> None:
    """The SR is closed: no clock of it is looked at again."""
    for row in open_deadlines(conn, sr_id, (*TARGET_KINDS, "update")):
        set_deadline(conn, row.id, next_at=None)


def rearm_update(conn: Connection, settings: Settings, sr: RequestRow, now: datetime) -> None:
    """§3.5.4: the not-updated clock restarts from now, while the SR is open; paused otherwise."""
    rows = open_deadlines(conn, sr.id, ("update",))
    if not rows:
        arm(conn, settings, sr, "update", now, now)
        rows = open_deadlines(conn, sr.id, ("update",))
    goal = target("update", sr.type, sr.priority, settings)
    due = now + goal.amount
    running = sr.state == State.open
    for row in rows:
        set_deadline(
            conn,
            row.id,
            started_at=now,
            due_at=due,
            breached_at=None,
            next_at=due if running else None,
        )
