"""The statements of the escalation analysis (§3.5.5): the escalations opened in a period with
their SR's customer and product, the time to their plan and whether they reached Directors."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from gateway.reports.queries import Seconds
from gateway.storage.tables import CUSTOMERS, ESCALATION_STEPS, ESCALATIONS, REQUESTS


@dataclass(frozen=True)
class EscalationRow:
    id: int
    customer: str
    entitlement: dict[str, Any]
    source: str  # customer | soc
    opened_at: datetime
    closed: bool  # by `as_of`
    plan_seconds: float | None  # opened to the step plan_given
    director: bool  # the step director_escalated by `as_of`
    asked_again: int  # steps requested_again by `as_of`


def _first(step: str, as_of: datetime) -> Any:
    s = ESCALATION_STEPS.c
    return (
        select(s.escalation_id, func.min(s.at).label("at"), func.count().label("times"))
        .where(s.step == step, s.at <= as_of)
        .group_by(s.escalation_id)
        .subquery()
    )


def escalations_in(
    conn: Connection, start: datetime, end: datetime, as_of: datetime, customer_id: int | None
) -> list[EscalationRow]:
    """The escalations opened from `start` to before `end`, by `as_of`, oldest first."""
    e = ESCALATIONS.c
    plan, director, again = (
        _first(step, as_of) for step in ("plan_given", "director_escalated", "requested_again")
    )
    query = (
        select(
            e.id,
            CUSTOMERS.c.name,
            REQUESTS.c.entitlement,
            e.source,
            e.opened_at,
            (e.closed_at.is_not(None) & (e.closed_at <= as_of)).label("closed"),
            Seconds(plan.c.at, e.opened_at),
            director.c.at.is_not(None).label("director"),
            func.coalesce(again.c.times, 0),
        )
        .select_from(
            ESCALATIONS.join(REQUESTS, REQUESTS.c.id == e.sr_id)
            .join(CUSTOMERS, CUSTOMERS.c.id == REQUESTS.c.customer_id)
            .outerjoin(plan, plan.c.escalation_id == e.id)
            .outerjoin(director, director.c.escalation_id == e.id)
            .outerjoin(again, again.c.escalation_id == e.id)
        )
        .where(e.opened_at >= start, e.opened_at < end, e.opened_at <= as_of)
        .order_by(e.opened_at, e.id)
    )
    if customer_id is not None:
        query = query.where(REQUESTS.c.customer_id == customer_id)
    return [_row(r) for r in conn.execute(query)]


def _row(r: Any) -> EscalationRow:
    return EscalationRow(
        id=r[0],
        customer=r[1],
        entitlement=r[2] or {},
        source=r[3],
        opened_at=r[4],
        closed=bool(r[5]),
        plan_seconds=float(r[6]) if r[6] is not None else None,
        director=bool(r[7]),
        asked_again=int(r[8]),
    )
