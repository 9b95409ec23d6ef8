"""The consequences of the SecureHands Deadlines, one handler per kind (`HANDLERS`, merged into
the clock's table by gateway/clock.py): acceptance, the query's warning and lapse, the top-up
reminder, a lot's reminders and expiry, the remediation-scan reminder."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from sqlalchemy import Connection
from sqlalchemy.exc import NoResultFound

from gateway.core.runtime import Runtime
from gateway.outbound.contexts.securehands import UnitsExpired, UnitsExpiring
from gateway.securehands import acceptance, clocks, ledger, notices, scans, sows, statements
from gateway.securehands.acts import Act, Refused
from gateway.securehands.balance import free_in
from gateway.securehands.queries import customer, finish_clock, lot, subject_of, warned_clock
from gateway.securehands.records import active_sow, session
from gateway.securehands.units import shown
from gateway.storage.records import request_row

log = logging.getLogger(__name__)
Deliveries = list[tuple[int, str]]


class Due(Protocol):
    """What the clock hands a handler of a due Deadline (sla/queries.py `DeadlineRow`)."""

    @property
    def id(self) -> int: ...
    @property
    def sr_id(self) -> int | None: ...
    @property
    def due_at(self) -> datetime: ...
    @property
    def warned_at(self) -> datetime | None: ...


Handler = Callable[[Connection, Runtime, Due, datetime], Deliveries]


def _accept(conn: Connection, rt: Runtime, row: Due, now: datetime) -> Deliveries:
    """§3.11.6: 2 working days after the statement, with no query: accepted, nothing sent."""
    act = Act(conn, rt, "clock", now)
    finish_clock(conn, row.id, now)
    session_id, _ = subject_of(conn, row.id)
    found = session(conn, session_id) if session_id is not None else None
    if found is not None:
        acceptance.accept(act, found)
    return []


def _query(conn: Connection, rt: Runtime, row: Due, now: datetime) -> Deliveries:
    """§3.11.7: SOC management is warned before the 5 working days are up; when they are, the
    debit stands and the customer and SOC management are told."""
    act = Act(conn, rt, "clock", now)
    session_id, _ = subject_of(conn, row.id)
    found = session(conn, session_id) if session_id is not None else None
    if found is None or found.state != acceptance.QUERIED:
        finish_clock(conn, row.id, now)
        return []
    sr = request_row(conn, found.sr_id)
    if row.warned_at is None and now < row.due_at:
        warned_clock(conn, row.id, now, row.due_at)
        return [statements.overdue(act, sr, found, row.due_at, lapsed=False)]
    finish_clock(conn, row.id, now)
    mails = list(acceptance.lapse(act, sr, found))
    return [*mails, statements.overdue(act, sr, found, row.due_at, lapsed=True)]


def _topup(conn: Connection, rt: Runtime, row: Due, now: datetime) -> Deliveries:
    """§3.11.2: 30 days after the quote, if no purchase covered the shortfall: a reminder."""
    act = Act(conn, rt, "clock", now)
    finish_clock(conn, row.id, now)
    if row.sr_id is None:
        return []
    sr = request_row(conn, row.sr_id)
    owner = customer(conn, sr.customer_id)
    current = ledger.figures(act, owner)
    agreed = active_sow(conn, sr.id)
    if current.shortfall <= 0 or agreed is None:
        return []
    planned = agreed.planned_units
    mails = sows.top_up(
        act,
        sr,
        owner,
        planned,
        planned - current.shortfall,
        current.shortfall,
        owner.today(now),
        reminder=True,
    )
    return list(mails)


def _expiring(conn: Connection, rt: Runtime, row: Due, now: datetime) -> Deliveries:
    """§3.11: units no agreed SOW covers, 90 and 30 days before their lot expires."""
    act = Act(conn, rt, "clock", now)
    finish_clock(conn, row.id, now)
    _, lot_id = subject_of(conn, row.id)
    if lot_id is None:
        return []
    customer_id, bought = lot(conn, lot_id)
    owner = customer(conn, customer_id)
    free = free_in(ledger.figures(act, owner), lot_id)
    if free <= 0:
        return []
    days = (bought.expires_on - owner.today(now)).days
    return [
        notices.to_contact(
            act,
            person,
            "units_expiring",
            UnitsExpiring(
                customer=owner.name,
                name=person.name,
                reference=bought.reference,
                valid_until=notices.last_day(bought.expires_on),
                units=shown(free),
                days=days,
            ),
        )
        for person in notices.account_managers(act, customer_id)
    ]


def _expiry(conn: Connection, rt: Runtime, row: Due, now: datetime) -> Deliveries:
    """§3.11.2: the lot's validity ended: what is left of it expires, and the customer is told."""
    act = Act(conn, rt, "clock", now)
    finish_clock(conn, row.id, now)
    _, lot_id = subject_of(conn, row.id)
    if lot_id is None:
        return []
    customer_id, bought = lot(conn, lot_id)
    owner = customer(conn, customer_id)
    expired = ledger.expire(act, owner, lot_id)
    if expired <= 0:
        return []
    after = notices.figures(ledger.figures(act, owner))
    return [
        notices.to_contact(
            act,
            person,
            "units_expired",
            UnitsExpired(
                **after,
                customer=owner.name,
                name=person.name,
                reference=bought.reference,
                valid_until=notices.last_day(bought.expires_on),
                units=shown(expired),
            ),
        )
        for person in notices.account_managers(act, customer_id)
    ]


def _remediation(conn: Connection, rt: Runtime, row: Due, now: datetime) -> Deliveries:
    finish_clock(conn, row.id, now)
    if row.sr_id is None:
        return []
    return list(scans.remind(Act(conn, rt, "clock", now), request_row(conn, row.sr_id)))


def _kept(handler: Handler) -> Handler:
    """A consequence that cannot be carried out (a record it needs is gone) is logged and its
    Deadline ended, in a savepoint: it never holds up the clock's other Deadlines."""

    def run(conn: Connection, rt: Runtime, row: Due, now: datetime) -> Deliveries:
        try:
            with conn.begin_nested():
                return handler(conn, rt, row, now)
        except (Refused, NoResultFound) as exc:
            log.warning("deadline %s (%s) not carried out: %s", row.id, handler.__name__, exc)
            finish_clock(conn, row.id, now)
            return []

    return run


HANDLERS: dict[str, Handler] = {
    kind: _kept(handler)
    for kind, handler in {
        clocks.ACCEPTANCE: _accept,
        clocks.QUERY: _query,
        clocks.TOPUP: _topup,
        clocks.EXPIRING: _expiring,
        clocks.EXPIRY: _expiry,
        clocks.REMEDIATION: _remediation,
    }.items()
}
