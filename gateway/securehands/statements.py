"""§3.11.6, §3.11.3, §3.11.7: the mails about one session: the completion statement, a forfeit,
a query to SOC management, its decision to the customer, an undecided query."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from gateway.outbound.contexts.securehands import (
    QueryDecided,
    QueryOverdue,
    SessionQueried,
    SessionStatement,
    UnitsForfeited,
)
from gateway.securehands import notices
from gateway.securehands.acts import Act
from gateway.securehands.balance import Balance
from gateway.securehands.records import SessionRow
from gateway.securehands.units import Count, shown
from gateway.storage.records import RequestRow


def _about(sr: RequestRow, row: SessionRow) -> notices.When:
    start = row.actual_start or row.planned_start
    end = row.actual_end or row.planned_end
    if start is None or end is None:
        return notices.When(day="not scheduled", start="", end="", zone="")
    return notices.when(start, end, sr.calendar)


def _spent(span: timedelta) -> str:
    hours, minutes = divmod(int(span.total_seconds() // 60), 60)
    return f"{hours} h {minutes:02d} min" if minutes else f"{hours} h"


def statement(
    act: Act, sr: RequestRow, row: SessionRow, counted: Count, after: Balance, accept_at: datetime
) -> notices.Delivery:
    """§3.11.6: the time and the units, how they were counted, the balance, a request for
    feedback, and when the session counts as accepted."""
    context = SessionStatement(
        sr_id=sr.public_id,
        title=sr.title,
        session=row.id,
        **_about(sr, row),
        **notices.figures(after),
        contact_name=sr.requester_name or "customer",
        spent=_spent(counted.spent),
        hours=counted.hours,
        inside=counted.inside,
        outside=counted.outside,
        rate=shown(counted.rate),
        fixed=None if counted.fixed is None else shown(counted.fixed),
        units=shown(counted.units),
        accept_at=notices.moment(accept_at, sr.calendar),
        soc_phone=act.rt.settings.soc_phone,
    )
    return notices.to_requester(act, sr, "session_statement", context)


def forfeited(
    act: Act, sr: RequestRow, row: SessionRow, reason: str, after: Balance
) -> notices.Delivery:
    """§3.11.3: the customer is told the units are forfeited, with the balance."""
    context = UnitsForfeited(
        sr_id=sr.public_id,
        title=sr.title,
        session=row.id,
        **_about(sr, row),
        **notices.figures(after),
        contact_name=sr.requester_name or "customer",
        reason=reason,
        units=shown(row.units or Decimal(0)),
        soc_phone=act.rt.settings.soc_phone,
    )
    return notices.to_requester(act, sr, "units_forfeited", context)


def queried(
    act: Act, sr: RequestRow, row: SessionRow, contact: str, text: str, decide_by: datetime
) -> notices.Delivery:
    """§3.11.7: SOC management hears of the query, with the customer's own words."""
    context = SessionQueried(
        sr_id=sr.public_id,
        title=sr.title,
        session=row.id,
        **_about(sr, row),
        customer=sr.customer,
        units=shown(row.units or Decimal(0)),
        contact=contact,
        text=text,
        statement_at=notices.moment(row.statement_at or act.now, sr.calendar),
        decide_by=notices.moment(decide_by, sr.calendar),
    )
    return notices.to_management(act, sr, "session_queried", context)


def decided(
    act: Act, sr: RequestRow, row: SessionRow, decision: str, reason: str, after: Balance
) -> notices.Delivery:
    """§3.11.7: one mail to the customer: what was decided, and the new balance."""
    units = row.units or Decimal(0)
    context = QueryDecided(
        sr_id=sr.public_id,
        title=sr.title,
        session=row.id,
        **_about(sr, row),
        **notices.figures(after),
        contact_name=sr.requester_name or "customer",
        decision=decision,
        units=shown(units),
        credited=shown(row.credited),
        counted=shown(units - row.credited),
        reason=reason,
        soc_phone=act.rt.settings.soc_phone,
    )
    return notices.to_requester(act, sr, "query_decided", context)


def overdue(
    act: Act, sr: RequestRow, row: SessionRow, decide_by: datetime, lapsed: bool
) -> notices.Delivery:
    """§3.11.7: a query SOC management has not decided: before and when its time is up."""
    context = QueryOverdue(
        sr_id=sr.public_id,
        title=sr.title,
        session=row.id,
        **_about(sr, row),
        customer=sr.customer,
        units=shown(row.units or Decimal(0)),
        queried_at=notices.moment(row.queried_at or act.now, sr.calendar),
        decide_by=notices.moment(decide_by, sr.calendar),
        lapsed=lapsed,
    )
    return notices.to_management(act, sr, "query_overdue", context)
