"""Escalation analysis (§3.5.5: "escalations are analysed for continual improvement of the
service process"): per period, by customer and product, who asked, how long Duty Management
took to give its plan, and how many reached Director level; and per month.

Time to plan: from the escalation's opening to its step `plan_given`, the SOC's first answer
to the customer after it opened (§3.5.5: "the customer contact who requested escalation will be
updated on the plan"), in elapsed minutes (the SOC works 24×7). An escalation closed or still
open without one has no plan: it is counted in `escalations`, not in `planned`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from gateway.core.hours import iso
from gateway.reports import stats
from gateway.reports.periods import Period
from gateway.reports.queries.escalations import EscalationRow, escalations_in


@dataclass(frozen=True)
class Figures:
    customer: str | None
    product: str | None  # the SR's product as its entitlement named it; None: none named
    escalations: int
    by_customer: int  # asked for by the customer (mail); by_soc: recorded by the SOC (#escalate)
    by_soc: int
    asked_again: int  # further requests while one was open
    planned: int
    plan_median_minutes: float | None
    plan_p90_minutes: float | None
    director: int  # reached Director level
    still_open: int


@dataclass(frozen=True)
class Month:
    month: str  # YYYY-MM in the period's time zone
    escalations: int
    director: int


@dataclass(frozen=True)
class EscalationAnalysis:
    customer: str | None
    period: Period
    as_of: datetime
    groups: list[Figures]
    months: list[Month]
    total: Figures
    columns: ClassVar[tuple[str, ...]] = ("scope", "month", *(f.name for f in fields(Figures)))

    def as_json(self) -> dict[str, Any]:
        return {
            "report": "escalations",
            "customer": self.customer,
            "from": self.period.first.isoformat(),
            "to": self.period.last.isoformat(),
            "timezone": self.period.timezone,
            "as_of": iso(self.as_of),
            "groups": [asdict(g) for g in self.groups],
            "months": [asdict(m) for m in self.months],
            "total": asdict(self.total),
        }

    def rows(self) -> list[dict[str, Any]]:
        return [
            *({"scope": "group", **asdict(g)} for g in self.groups),
            *({"scope": "month", **asdict(m)} for m in self.months),
            {"scope": "total", **asdict(self.total)},
        ]


def analysis(
    conn: Connection,
    period: Period,
    as_of: datetime,
    customer: str | None = None,
    customer_id: int | None = None,
) -> EscalationAnalysis:
    rows = escalations_in(conn, period.start, period.end, as_of, customer_id)
    grouped: dict[tuple[str, str | None], list[EscalationRow]] = defaultdict(list)
    monthly: dict[str, list[EscalationRow]] = {month: [] for month in period.months()}
    zone = ZoneInfo(period.timezone)
    for row in rows:
        grouped[(row.customer, row.entitlement.get("product") or None)].append(row)
        monthly.setdefault(f"{row.opened_at.astimezone(zone):%Y-%m}", []).append(row)
    groups = [
        _figures(items, name, product)
        for (name, product), items in sorted(grouped.items(), key=lambda kv: _key(kv[0]))
    ]
    months = [Month(m, len(items), sum(r.director for r in items)) for m, items in monthly.items()]
    return EscalationAnalysis(
        customer, period, as_of, groups, months, _figures(rows, customer, None)
    )


def _figures(rows: list[EscalationRow], customer: str | None, product: str | None) -> Figures:
    plans = [stats.minutes(r.plan_seconds) for r in rows if r.plan_seconds is not None]
    return Figures(
        customer=customer,
        product=product,
        escalations=len(rows),
        by_customer=sum(r.source == "customer" for r in rows),
        by_soc=sum(r.source == "soc" for r in rows),
        asked_again=sum(r.asked_again for r in rows),
        planned=len(plans),
        plan_median_minutes=stats.median(plans),
        plan_p90_minutes=stats.p90(plans),
        director=sum(r.director for r in rows),
        still_open=sum(not r.closed for r in rows),
    )


def _key(group: tuple[str, str | None]) -> tuple[str, str]:
    return group[0], group[1] or ""
