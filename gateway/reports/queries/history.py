"""The statements of the SR history (§3.10): one customer's SRs with their changes of state,
escalations and steps, and the last update of those still open, each as known at `as_of`."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, or_, select

from gateway.storage.tables import (
    ESCALATION_STEPS,
    ESCALATIONS,
    MESSAGES,
    REQUEST_EVENTS,
    REQUESTS,
)

CHUNK = 900  # ids per IN list: well under every database's limit of bound parameters


@dataclass(frozen=True)
class RequestFacts:
    id: int
    public_id: str
    title: str
    type: str
    priority: int
    requested_priority: int | None
    entitlement: dict[str, Any]
    created_at: datetime
    initial_response_at: datetime | None
    closed_at: datetime | None
    follow_up_of: str | None


@dataclass(frozen=True)
class Event:
    at: datetime
    to_state: str


@dataclass(frozen=True)
class StepFacts:
    at: datetime
    step: str
    detail: str


@dataclass(frozen=True)
class EscalationFacts:
    id: int
    sr_id: int
    source: str
    requested_by: str
    opened_at: datetime
    closed_at: datetime | None


@dataclass(frozen=True)
class Update:
    """The newest mail on an SR that its customer could see (no internal note, no auto-reply)."""

    at: datetime
    author_kind: str  # contact | soc
    text: str


_EARLIER = REQUESTS.alias("earlier")
_REQUEST = select(
    REQUESTS.c.id,
    REQUESTS.c.public_id,
    REQUESTS.c.title,
    REQUESTS.c.type,
    REQUESTS.c.priority,
    REQUESTS.c.requested_priority,
    REQUESTS.c.entitlement,
    REQUESTS.c.created_at,
    REQUESTS.c.initial_response_at,
    REQUESTS.c.closed_at,
    _EARLIER.c.public_id,
).outerjoin(_EARLIER, _EARLIER.c.id == REQUESTS.c.follow_up_of_id)


def opened(
    conn: Connection, customer_id: int, start: datetime, end: datetime, as_of: datetime
) -> list[RequestFacts]:
    """The customer's SRs opened from `start` to before `end` (and by `as_of`), oldest first."""
    opened_at = REQUESTS.c.created_at
    rows = conn.execute(
        _REQUEST.where(
            REQUESTS.c.customer_id == customer_id,
            opened_at >= start,
            opened_at < end,
            opened_at <= as_of,
        ).order_by(opened_at, REQUESTS.c.id)
    )
    return [RequestFacts(*row) for row in rows]


def not_closed(
    conn: Connection, customer_id: int, end: datetime, as_of: datetime
) -> list[RequestFacts]:
    """The customer's SRs opened before `end` that were not closed at `as_of`."""
    opened_at, closed_at = REQUESTS.c.created_at, REQUESTS.c.closed_at
    rows = conn.execute(
        _REQUEST.where(
            REQUESTS.c.customer_id == customer_id,
            opened_at < end,
            opened_at <= as_of,
            or_(closed_at.is_(None), closed_at > as_of),
        ).order_by(opened_at, REQUESTS.c.id)
    )
    return [RequestFacts(*row) for row in rows]


def events(conn: Connection, sr_ids: Sequence[int], as_of: datetime) -> dict[int, list[Event]]:
    """Each SR's changes of state up to `as_of`, in order."""
    found: dict[int, list[Event]] = {}
    e = REQUEST_EVENTS.c
    for chunk in _chunks(sr_ids):
        rows = conn.execute(
            select(e.sr_id, e.at, e.to_state)
            .where(e.sr_id.in_(chunk), e.at <= as_of)
            .order_by(e.sr_id, e.at, e.id)
        )
        for row in rows:
            found.setdefault(row.sr_id, []).append(Event(row.at, row.to_state))
    return found


def escalations(
    conn: Connection, sr_ids: Sequence[int], as_of: datetime
) -> tuple[list[EscalationFacts], dict[int, list[StepFacts]]]:
    """The SRs' escalations opened by `as_of`, and each one's steps up to `as_of`."""
    found: list[EscalationFacts] = []
    for chunk in _chunks(sr_ids):
        rows = conn.execute(
            select(
                ESCALATIONS.c.id,
                ESCALATIONS.c.sr_id,
                ESCALATIONS.c.source,
                ESCALATIONS.c.requested_by,
                ESCALATIONS.c.opened_at,
                ESCALATIONS.c.closed_at,
            )
            .where(ESCALATIONS.c.sr_id.in_(chunk), ESCALATIONS.c.opened_at <= as_of)
            .order_by(ESCALATIONS.c.opened_at, ESCALATIONS.c.id)
        )
        found += [EscalationFacts(*row) for row in rows]
    steps: dict[int, list[StepFacts]] = {}
    s = ESCALATION_STEPS.c
    for chunk in _chunks([f.id for f in found]):
        rows = conn.execute(
            select(s.escalation_id, s.at, s.step, s.detail)
            .where(s.escalation_id.in_(chunk), s.at <= as_of)
            .order_by(s.escalation_id, s.at, s.id)
        )
        for row in rows:
            steps.setdefault(row.escalation_id, []).append(StepFacts(row.at, row.step, row.detail))
    return found, steps


def last_updates(conn: Connection, sr_ids: Sequence[int], as_of: datetime) -> dict[int, Update]:
    """Each SR's newest mail that its customer saw or wrote, up to `as_of`."""
    found: dict[int, Update] = {}
    m = MESSAGES.c
    for chunk in _chunks(sr_ids):
        rows = conn.execute(
            select(m.sr_id, m.created_at, m.author_kind, m.reply_text)
            .where(
                m.sr_id.in_(chunk),
                m.created_at <= as_of,
                m.internal.is_(False),
                m.author_kind.in_(("contact", "soc")),
                m.reply_text != "",
            )
            .order_by(m.sr_id, m.created_at, m.id)
        )
        for row in rows:  # oldest first: the newest of each SR is the one left
            found[row.sr_id] = Update(row.created_at, row.author_kind, row.reply_text)
    return found


def _chunks(ids: Sequence[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), CHUNK):
        yield list(ids[start : start + CHUNK])
