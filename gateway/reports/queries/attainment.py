"""The statements of the attainment report: the period's SRs grouped by customer, type and
priority, with their Initial Response Deadlines, time in each state (request_events) and
not-updated alerts; one row of counts per group, one number per answered SR."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, case, func, not_, or_, select

from gateway.core.hours import Calendar
from gateway.reports.queries import Cohort, Seconds
from gateway.storage.tables import CUSTOMERS, DEADLINES, DELIVERIES, REQUEST_EVENTS, REQUESTS

Group = tuple[int, str, int]  # customer id, SR type, priority


Kind = tuple[str, int]  # SR type, priority: a group of the report


@dataclass(frozen=True)
class Outcomes:
    requests: int
    met: int
    warned: int
    missed: int
    running: int
    answered: int


@dataclass(frozen=True)
class Elapsed:
    """Stored instants of one answered SR whose target runs on Business Hours – Standard."""

    started_at: datetime
    met_at: datetime
    calendar: Calendar


_IR = DEADLINES.alias("ir")
_GROUP = (REQUESTS.c.customer_id, REQUESTS.c.type, REQUESTS.c.priority)
_WITH_IR = REQUESTS.outerjoin(
    _IR, and_(_IR.c.sr_id == REQUESTS.c.id, _IR.c.kind == "initial_response")
)


def _answered(as_of: datetime) -> ColumnElement[bool]:
    return and_(_IR.c.met_at.is_not(None), _IR.c.met_at <= as_of)


def _count(condition: ColumnElement[bool]) -> ColumnElement[Any]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def outcomes(conn: Connection, cohort: Cohort) -> dict[Group, Outcomes]:
    """Per group: Initial Responses within the target before its warning (met), after the
    warning (warned), after the target or not yet and past it (missed), not yet and not due
    (running); and how many were answered by `as_of`."""
    answered = _answered(cohort.as_of)
    in_time = and_(answered, _IR.c.met_at <= _IR.c.due_at)
    after_warning = and_(_IR.c.warn_at.is_not(None), _IR.c.met_at >= _IR.c.warn_at)
    late = or_(
        and_(answered, _IR.c.met_at > _IR.c.due_at),
        and_(not_(answered), _IR.c.due_at < cohort.as_of),
    )
    running = and_(not_(answered), _IR.c.due_at >= cohort.as_of)
    rows = conn.execute(
        select(
            *_GROUP,
            func.count(),
            _count(and_(in_time, not_(after_warning))),
            _count(and_(in_time, after_warning)),
            _count(late),
            _count(running),
            _count(answered),
        )
        .select_from(_WITH_IR)
        .where(*cohort.where())
        .group_by(*_GROUP)
    ).all()
    return {(r[0], r[1], r[2]): Outcomes(*(int(v) for v in r[3:])) for r in rows}


def response_seconds(
    conn: Connection, cohort: Cohort, standard_types: tuple[str, ...]
) -> list[tuple[Kind, float]]:
    """Each answered SR's elapsed seconds on a 24×7 target: three numbers a row, read at once
    (ranking them in the database was slower, on SQLite three times, bench/reports.py)."""
    rows = conn.execute(
        select(REQUESTS.c.type, REQUESTS.c.priority, Seconds(_IR.c.met_at, _IR.c.started_at))
        .select_from(_WITH_IR)
        .where(*cohort.where(), _answered(cohort.as_of), REQUESTS.c.type.not_in(standard_types))
    ).all()
    return [((r[0], r[1]), float(r[2])) for r in rows]


def response_instants(
    conn: Connection, cohort: Cohort, standard_types: tuple[str, ...]
) -> list[tuple[Group, Elapsed]]:
    """Start and Initial Response of each answered SR on a working-hours target, with its
    customer's calendar (the working time between them is counted in Python, core/hours.py)."""
    rows = conn.execute(
        select(
            *_GROUP,
            _IR.c.started_at,
            _IR.c.met_at,
            CUSTOMERS.c.timezone,
            CUSTOMERS.c.country,
            CUSTOMERS.c.subdivision,
        )
        .select_from(_WITH_IR.join(CUSTOMERS, CUSTOMERS.c.id == REQUESTS.c.customer_id))
        .where(*cohort.where(), _answered(cohort.as_of), REQUESTS.c.type.in_(standard_types))
    ).all()
    return [((r[0], r[1], r[2]), Elapsed(r[3], r[4], Calendar(r[5], r[6], r[7]))) for r in rows]


def state_seconds(
    conn: Connection, cohort: Cohort, states: tuple[str, ...]
) -> dict[Group, tuple[float, ...]]:
    """Per group: the seconds its SRs spent in each of `states` up to `as_of`.

    Each change of state ends a stay in its `from_state` and begins one in its `to_state`
    (storage/models/history.py), so an SR's time in a state is, up to `as_of`, the sum of
    (as_of − begun) over the stays begun less the sum of (as_of − ended) over those ended:
    one pass over the changes in the order they are stored, no window, no sort. Summed per SR
    first, so that the SRs are joined once each, not once per change.
    """
    e = REQUEST_EVENTS.c
    changes = (
        select(e.sr_id, e.to_state, e.from_state, Seconds(cohort.as_of, e.at).label("before"))
        .where(e.sr_id.between(*cohort.ids), e.at <= cohort.as_of, *_of_customer(cohort))
        .subquery()
    )
    c = changes.c

    def stay(state: str) -> ColumnElement[Any]:
        begun = func.sum(case((c.to_state == state, c.before), else_=0.0))
        ended = func.sum(case((c.from_state == state, c.before), else_=0.0))
        return (begun - ended).label(f"in_{state}")

    each = select(c.sr_id, *(stay(state) for state in states)).group_by(c.sr_id).subquery()
    rows = conn.execute(
        select(*_GROUP, *(func.sum(each.c[f"in_{state}"]) for state in states))
        .select_from(each.join(REQUESTS, REQUESTS.c.id == each.c.sr_id))
        .where(*cohort.where())
        .group_by(*_GROUP)
    ).all()
    return {(r[0], r[1], r[2]): tuple(float(v or 0) for v in r[3:]) for r in rows}


def _of_customer(cohort: Cohort) -> list[ColumnElement[bool]]:
    """One customer's SRs among the changes of state of every SR in the id range."""
    if cohort.customer_id is None:
        return []
    return [REQUEST_EVENTS.c.sr_id.in_(select(REQUESTS.c.id).where(*cohort.where()))]


def alerts(conn: Connection, cohort: Cohort, template: str) -> dict[Group, int]:
    """Per group: the alerts of `template` written for its SRs up to `as_of` (§3.5.4)."""
    rows = conn.execute(
        select(*_GROUP, func.count())
        .select_from(DELIVERIES.join(REQUESTS, REQUESTS.c.id == DELIVERIES.c.sr_id))
        .where(
            *cohort.where(),
            DELIVERIES.c.template == template,
            DELIVERIES.c.created_at <= cohort.as_of,
        )
        .group_by(*_GROUP)
    )
    return {(r[0], r[1], r[2]): int(r[3]) for r in rows}
