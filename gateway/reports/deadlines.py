"""The reports' Deadline: the quarterly account review (§3.10: "one per quarter"), due at
GATEWAY_ACCOUNT_REVIEW_TIME on the SOC's first working day of each quarter (GATEWAY_SOC_TIMEZONE,
GATEWAY_SOC_COUNTRY's public holidays). The clock (gateway/clock.py) calls `HANDLERS`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from sqlalchemy import Connection

from gateway.core.hours import Calendar
from gateway.core.runtime import Runtime
from gateway.core.settings import Settings
from gateway.reports import periods, review
from gateway.reports.queries import jobs

KIND = "account_review"
Deliveries = list[tuple[int, str]]


class Job(Protocol):
    """What the handler reads of its Deadline row (gateway/sla/queries.py `DeadlineRow`)."""

    @property
    def id(self) -> int: ...

    @property
    def due_at(self) -> datetime: ...


def soc_calendar(settings: Settings) -> Calendar:
    return Calendar(settings.soc_timezone, settings.soc_country)


def next_review(settings: Settings, after: datetime) -> datetime:
    return periods.next_review(settings.account_review_time, soc_calendar(settings), after)


def prepare(conn: Connection, rt: Runtime, now: datetime) -> None:
    """The quarterly job scheduled (once, whichever clock starts first)."""
    jobs.ensure_job(conn, KIND, next_review(rt.settings, now), now)


def _account_review(conn: Connection, rt: Runtime, row: Job, now: datetime) -> Deliveries:
    """Every customer's review of the quarter before the one the job fell due in (a clock that
    was stopped over a quarter's start sends it late, never for the wrong quarter)."""
    following = next_review(rt.settings, max(now, row.due_at))
    jobs.move_job(conn, row.id, now, following)
    quarter = periods.quarter_before(row.due_at, rt.settings.soc_timezone)
    return review.send_reviews(conn, rt, quarter, now)


HANDLERS: dict[str, Callable[[Connection, Runtime, Job, datetime], Deliveries]] = {
    KIND: _account_review,
}
