"""Service-level attainment (§3.5.3, §3.5.4, R3.2, R3.5), per customer and overall, for a period.

The SRs opened in the period, grouped by type and priority (the priority they have now, which
their Deadlines were last computed for, R3.4). For each group: how many Initial Responses came
within the target before the SOC's warning (met), within it after the warning (warned), after
it or not at all while it passed (missed), or are not due yet (running); the median and 90th
percentile time to the Initial Response in the target's own hours (24×7, or working minutes of
the customer's Business Hours – Standard); the not-updated alerts raised; the time its SRs
spent in each state. Everything as stored at `as_of`: Deadlines, deliveries, request_events.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import Connection

from gateway.core.hours import iso
from gateway.reports import queries, stats, targets
from gateway.reports.periods import Period
from gateway.reports.queries import Cohort
from gateway.reports.queries import attainment as statements
from gateway.reports.queries.attainment import Group, Kind

STATES = ("open", "waiting", "resolved")  # closed is where an SR's time ends


@dataclass(frozen=True)
class Line:
    """One row of the report: a type and priority, a customer's total, or the total."""

    customer: str | None
    type: str | None
    priority: int | None
    target: str | None
    target_minutes: int | None
    hours: str | None  # "24x7" or "standard": what the times below are counted in
    requests: int
    met: int
    warned: int
    missed: int
    running: int
    attainment_percent: float | None  # (met + warned) / (met + warned + missed)
    answered: int
    median_minutes: float | None
    p90_minutes: float | None
    not_updated_alerts: int
    open_minutes: float
    waiting_minutes: float
    resolved_minutes: float
    open_mean_minutes: float | None
    waiting_mean_minutes: float | None
    resolved_mean_minutes: float | None


@dataclass(frozen=True)
class Attainment:
    customer: str | None
    period: Period
    as_of: datetime
    groups: list[Line]
    customers: list[Line]  # each customer's total; only in the overall report
    total: Line
    # (type, priority) -> each answered SR's minutes to its Initial Response, for the charts
    minutes: dict[tuple[str, int], list[float]] = field(default_factory=dict)
    columns: ClassVar[tuple[str, ...]] = ("scope", *(f.name for f in fields(Line)))

    def as_json(self) -> dict[str, Any]:
        return {
            "report": "sla",
            "customer": self.customer,
            "from": self.period.first.isoformat(),
            "to": self.period.last.isoformat(),
            "timezone": self.period.timezone,
            "as_of": iso(self.as_of),
            "groups": [asdict(line) for line in self.groups],
            "customers": [asdict(line) for line in self.customers],
            "total": asdict(self.total),
        }

    def rows(self) -> list[dict[str, Any]]:
        """The same figures as one table (CSV): a `scope` column says what each row sums."""
        return [
            *({"scope": "group", **asdict(line)} for line in self.groups),
            *({"scope": "customer", **asdict(line)} for line in self.customers),
            {"scope": "total", **asdict(self.total)},
        ]


OUTCOMES = ("requests", "met", "warned", "missed", "running", "answered")


@dataclass
class _Tally:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    alerts: int = 0
    states: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STATES, 0.0))

    def add(self, other: _Tally) -> None:
        self.alerts += other.alerts
        for outcome in OUTCOMES:
            self.counts[outcome] += other.counts[outcome]
        for state in STATES:
            self.states[state] += other.states[state]


def attainment(
    conn: Connection,
    period: Period,
    as_of: datetime,
    customer: str | None = None,
    customer_id: int | None = None,
) -> Attainment:
    cohort = queries.cohort(conn, period.start, period.end, as_of, customer_id)
    tallies = _tallies(conn, cohort)
    minutes = _minutes(conn, cohort)
    names = queries.customer_names(conn)
    by_group: dict[Kind, _Tally] = defaultdict(_Tally)
    by_customer: dict[int, _Tally] = defaultdict(_Tally)
    everything = _Tally()
    for (customer_of, kind, priority), tally in sorted(tallies.items()):
        by_group[(kind, priority)].add(tally)
        by_customer[customer_of].add(tally)
        everything.add(tally)
    groups = [_line(tally, None, key, minutes.get(key, [])) for key, tally in by_group.items()]
    customers = [
        _line(tally, names.get(cid, str(cid)))
        for cid, tally in sorted(by_customer.items(), key=lambda kv: names.get(kv[0], ""))
    ]
    return Attainment(
        customer=customer,
        period=period,
        as_of=as_of,
        groups=sorted(groups, key=lambda g: (g.type or "", g.priority or 0)),
        customers=[] if customer_id is not None else customers,
        total=_line(everything, customer),
        minutes=minutes,
    )


def _tallies(conn: Connection, cohort: Cohort) -> dict[Group, _Tally]:
    tallies: dict[Group, _Tally] = defaultdict(_Tally)
    for group, outcome in statements.outcomes(conn, cohort).items():
        tallies[group].counts = {name: getattr(outcome, name) for name in OUTCOMES}
    for group, count in statements.alerts(conn, cohort, "not_updated").items():
        tallies[group].alerts = count
    for group, spent in statements.state_seconds(conn, cohort, STATES).items():
        for state, seconds in zip(STATES, spent, strict=True):
            tallies[group].states[state] += seconds
    return tallies


def _minutes(conn: Connection, cohort: Cohort) -> dict[Kind, list[float]]:
    """Each answered SR's minutes to its Initial Response, per kind, in the target's hours:
    elapsed on 24×7 targets, working minutes of the customer's calendar on Business Hours –
    Standard (gateway/core/hours.py)."""
    standard = targets.STANDARD_HOURS_TYPES
    minutes: dict[Kind, list[float]] = defaultdict(list)
    for key, seconds in statements.response_seconds(conn, cohort, standard):
        minutes[key].append(seconds / 60)
    for (_customer, kind, priority), instants in statements.response_instants(
        conn, cohort, standard
    ):
        worked = instants.calendar.working_time_between(instants.started_at, instants.met_at)
        minutes[(kind, priority)].append(worked.total_seconds() / 60)
    return {key: sorted(values) for key, values in minutes.items()}


def _line(
    tally: _Tally,
    customer: str | None,
    kind: Kind | None = None,
    minutes: list[float] | None = None,
) -> Line:
    counts = tally.counts
    requests, met, warned, missed = (counts[k] for k in ("requests", "met", "warned", "missed"))
    goal = targets.goal(*kind) if kind is not None else None
    spent = {state: stats.minutes(tally.states[state]) for state in STATES}
    mean = {state: round(spent[state] / requests, 2) if requests else None for state in STATES}
    return Line(
        customer=customer,
        type=kind[0] if kind else None,
        priority=kind[1] if kind else None,
        target=goal.label if goal else None,
        target_minutes=goal.minutes if goal else None,
        hours=("standard" if goal.standard_hours else "24x7") if goal else None,
        requests=requests,
        met=met,
        warned=warned,
        missed=missed,
        running=counts["running"],
        attainment_percent=stats.percent(met + warned, met + warned + missed),
        answered=counts["answered"],
        median_minutes=stats.median(minutes) if minutes else None,
        p90_minutes=stats.p90(minutes) if minutes else None,
        not_updated_alerts=tally.alerts,
        open_minutes=spent["open"],
        waiting_minutes=spent["waiting"],
        resolved_minutes=spent["resolved"],
        open_mean_minutes=mean["open"],
        waiting_mean_minutes=mean["waiting"],
        resolved_mean_minutes=mean["resolved"],
    )
