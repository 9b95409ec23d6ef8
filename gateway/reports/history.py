"""The SR history of one customer for an account review (§3.10: "the Service Request history and
action plans in place will be discussed"): every SR opened in the period with its type,
priorities, product and times, its escalations step by step, and the SRs still open with their
last update, each as known at `as_of`.

Resolved: when the SR last reached resolved (or closed) with no reopening after; an SR closed
straight from open was resolved when it was closed (request_events).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import Connection

from gateway.core.hours import iso
from gateway.reports.periods import Period
from gateway.reports.queries import history as statements
from gateway.reports.queries.history import Event, RequestFacts

OPEN_STATES = ("open", "waiting")
DONE_STATES = ("resolved", "closed")
UPDATE_CHARS = 300  # of the last update's text
COLUMNS = (
    "sr_id",
    "title",
    "type",
    "priority_requested",
    "priority",
    "product",
    "entitlement",
    "state",
    "opened_at",
    "initial_response_at",
    "resolved_at",
    "closed_at",
    "follow_up_of",
    "in_period",
    "escalations",
    "escalation_levels",
    "escalation_steps",
    "open",
    "last_update_at",
    "last_update_by",
    "last_update",
)


@dataclass(frozen=True)
class Step:
    at: datetime
    step: str
    detail: str


@dataclass(frozen=True)
class EscalationEntry:
    opened_at: datetime
    source: str  # customer | soc
    requested_by: str
    level: str  # duty_management | director, as it stood at as_of
    closed_at: datetime | None
    steps: list[Step]


@dataclass(frozen=True)
class Entry:
    sr_id: str
    title: str
    type: str
    priority_requested: int | None
    priority: int
    product: str | None
    entitlement: str | None  # covered, expired, … (requests/entitlements.py)
    state: str
    opened_at: datetime
    initial_response_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    follow_up_of: str | None
    escalations: list[EscalationEntry]


@dataclass(frozen=True)
class OpenEntry:
    sr_id: str
    title: str
    type: str
    priority: int
    state: str
    opened_at: datetime
    last_update_at: datetime | None
    last_update_by: str | None  # customer | SOC
    last_update: str


@dataclass(frozen=True)
class History:
    customer: str
    period: Period
    as_of: datetime
    requests: list[Entry]
    open: list[OpenEntry]
    columns: ClassVar[tuple[str, ...]] = COLUMNS

    def as_json(self) -> dict[str, Any]:
        return {
            "report": "history",
            "customer": self.customer,
            "from": self.period.first.isoformat(),
            "to": self.period.last.isoformat(),
            "timezone": self.period.timezone,
            "as_of": iso(self.as_of),
            "requests": [_jsonable(asdict(entry)) for entry in self.requests],
            "open": [_jsonable(asdict(entry)) for entry in self.open],
        }

    def rows(self) -> list[dict[str, Any]]:
        """One row per SR of either list; escalations as counts and their steps as text."""
        still_open = {entry.sr_id: entry for entry in self.open}
        listed = [_row(entry, still_open.pop(entry.sr_id, None), True) for entry in self.requests]
        return listed + [_open_row(entry) for entry in still_open.values()]


def history(
    conn: Connection, customer: str, customer_id: int, period: Period, as_of: datetime
) -> History:
    opened = statements.opened(conn, customer_id, period.start, period.end, as_of)
    candidates = statements.not_closed(conn, customer_id, period.end, as_of)
    ids = sorted({sr.id for sr in opened} | {sr.id for sr in candidates})
    changes = statements.events(conn, ids, as_of)
    escalations, steps = statements.escalations(conn, [sr.id for sr in opened], as_of)
    by_sr: dict[int, list[EscalationEntry]] = {}
    for e in escalations:
        taken = [Step(s.at, s.step, s.detail) for s in steps.get(e.id, [])]
        closed = e.closed_at if e.closed_at is not None and e.closed_at <= as_of else None
        entry = EscalationEntry(e.opened_at, e.source, e.requested_by, _level(taken), closed, taken)
        by_sr.setdefault(e.sr_id, []).append(entry)
    entries = [_entry(sr, changes.get(sr.id, []), by_sr.get(sr.id, []), as_of) for sr in opened]
    still_open = [sr for sr in candidates if _state(changes.get(sr.id, [])) in OPEN_STATES]
    updates = statements.last_updates(conn, [sr.id for sr in still_open], as_of)
    listed = [_open(sr, _state(changes.get(sr.id, [])), updates.get(sr.id)) for sr in still_open]
    return History(customer, period, as_of, entries, listed)


def _entry(
    sr: RequestFacts, events: list[Event], escalations: list[EscalationEntry], as_of: datetime
) -> Entry:
    answered = sr.initial_response_at
    closed = sr.closed_at
    return Entry(
        sr_id=sr.public_id,
        title=sr.title,
        type=sr.type,
        priority_requested=sr.requested_priority,
        priority=sr.priority,
        product=sr.entitlement.get("product") or None,
        entitlement=sr.entitlement.get("status") or None,
        state=_state(events),
        opened_at=sr.created_at,
        initial_response_at=answered if answered is not None and answered <= as_of else None,
        resolved_at=_resolved(events),
        closed_at=closed if closed is not None and closed <= as_of else None,
        follow_up_of=sr.follow_up_of,
        escalations=escalations,
    )


def _open(sr: RequestFacts, state: str, update: statements.Update | None) -> OpenEntry:
    return OpenEntry(
        sr_id=sr.public_id,
        title=sr.title,
        type=sr.type,
        priority=sr.priority,
        state=state,
        opened_at=sr.created_at,
        last_update_at=update.at if update else None,
        last_update_by=("SOC" if update.author_kind == "soc" else "customer") if update else None,
        last_update=update.text.strip()[:UPDATE_CHARS] if update else "",
    )


def _state(events: list[Event]) -> str:
    return events[-1].to_state if events else "open"


def _resolved(events: list[Event]) -> datetime | None:
    resolved: datetime | None = None
    for event in events:  # the first of the last run of resolved/closed; reopening clears it
        resolved = (resolved or event.at) if event.to_state in DONE_STATES else None
    return resolved


def _level(steps: Sequence[Step]) -> str:
    reached = any(s.step == "director_escalated" for s in steps)
    return "director" if reached else "duty_management"


def _row(entry: Entry, still_open: OpenEntry | None, in_period: bool) -> dict[str, Any]:
    row = {k: v for k, v in asdict(entry).items() if k != "escalations"}
    row["in_period"] = in_period
    row["escalations"] = len(entry.escalations)
    row["escalation_levels"] = ";".join(e.level for e in entry.escalations)
    row["escalation_steps"] = "; ".join(
        f"{iso(s.at)} {s.step}" for e in entry.escalations for s in e.steps
    )
    row["open"] = still_open is not None
    update = asdict(still_open) if still_open else {}
    for key in ("last_update_at", "last_update_by", "last_update"):
        row[key] = update.get(key)
    return dict(_jsonable(row))


def _open_row(entry: OpenEntry) -> dict[str, Any]:
    blank = dict.fromkeys(("initial_response_at", "resolved_at", "closed_at", "follow_up_of"))
    row = {**blank, "priority_requested": None, "product": None, "entitlement": None}
    row.update(asdict(entry))
    row.update(in_period=False, escalations=0, escalation_levels="", escalation_steps="")
    row["open"] = True
    return dict(_jsonable(row))


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value
