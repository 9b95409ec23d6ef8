"""The report pages (§3.5.5, §3.7, §3.10): the reports of gateway/reports/ for a customer (or
all) and a period, as tables and server-rendered SVG charts (gateway/reports/charts.py).

`REPORTS` is the list of pages: another report is one more `ReportPage` (a builder of the
template's values, and its template), and it is listed, linked and guarded like these.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from gateway.admin.views import Result, Shown, Spec, Visit, missing, page
from gateway.directory import listings as directory_listings
from gateway.reports import figures, periods, queries, wording
from gateway.reports.attainment import attainment
from gateway.reports.escalations import analysis
from gateway.reports.history import history
from gateway.reports.periods import BadPeriod, Period
from gateway.reports.queries import CustomerRef
from gateway.reports.units import units_report
from gateway.storage.db import transaction

Builder = Callable[[Connection, Period, datetime, CustomerRef | None], dict[str, Any]]


@dataclass(frozen=True)
class ReportPage:
    name: str  # /admin/reports/<name>
    title: str
    summary: str
    template: str
    build: Builder
    needs_customer: bool = False


def sla(conn: Connection, period: Period, now: datetime, ref: CustomerRef | None) -> dict[str, Any]:
    report = attainment(conn, period, now, ref.name if ref else None, ref.id if ref else None)
    return {
        "report": report,
        "lines": [wording.attainment_line(line) for line in report.groups],
        "charts": [
            figures.attainment_chart(report, period.label),
            figures.response_chart(report),
        ],
    }


def account_history(
    conn: Connection, period: Period, now: datetime, ref: CustomerRef | None
) -> dict[str, Any]:
    if ref is None:
        raise BadPeriod("choose a customer: the history is one customer's")
    report, zone = history(conn, ref.name, ref.id, period, now), ZoneInfo(ref.timezone)
    return {
        "report": report,
        "lines": [wording.history_line(entry, zone) for entry in report.requests],
        "escalations": [
            wording.escalation_line(entry.sr_id, e, zone)
            for entry in report.requests
            for e in entry.escalations
        ],
        "open": [wording.open_line(entry, zone) for entry in report.open],
        "zone": ref.timezone,
    }


def escalations(
    conn: Connection, period: Period, now: datetime, ref: CustomerRef | None
) -> dict[str, Any]:
    report = analysis(conn, period, now, ref.name if ref else None, ref.id if ref else None)
    return {"report": report, "charts": [figures.escalations_chart(report)]}


def units(
    conn: Connection, period: Period, now: datetime, ref: CustomerRef | None
) -> dict[str, Any]:
    report = units_report(conn, period, now, ref.name if ref else None, ref.id if ref else None)
    drawn = {found.customer: figures.units_chart(found) for found in report.customers}
    return {"report": report, "charts": drawn}


REPORTS = (
    ReportPage(
        "sla",
        "Service-level attainment",
        "Initial Response targets met, warned and missed per type and priority (§3.5.3).",
        "report_sla.html.j2",
        sla,
    ),
    ReportPage(
        "history",
        "SR history",
        "One customer's SRs of the period, their escalations and those still open (§3.10).",
        "report_history.html.j2",
        account_history,
        needs_customer=True,
    ),
    ReportPage(
        "escalations",
        "Escalation analysis",
        "Escalations by customer, product and month; time to the plan (§3.5.5).",
        "report_escalations.html.j2",
        escalations,
    ),
    ReportPage(
        "units",
        "SecureHands units",
        "Units per customer and month: purchased, reserved, consumed, forfeited, expired, "
        "credited; the lots that expire within 90 days (§3.11).",
        "report_units.html.j2",
        units,
    ),
)
BY_NAME = {report.name: report for report in REPORTS}


def reports_index(visit: Visit) -> Shown:
    return Shown("reports.html.j2", {"reports": REPORTS})


def report_page(visit: Visit) -> Result:
    found = BY_NAME.get(str(visit.path["name"]))
    if found is None:
        return missing(f"report {visit.path['name']}")
    rt, zone = visit.rt, visit.rt.settings.soc_timezone
    asked = {name: visit.query.get(name, "").strip()[:200] for name in ("customer", "quarter")}
    asked |= {name: visit.query.get(name, "").strip()[:10] for name in ("from", "to")}
    if not any(asked[name] for name in ("quarter", "from", "to")):
        year, number = periods.quarter_of(rt.now().astimezone(ZoneInfo(zone)).date())
        asked["quarter"] = f"{year}Q{number}"
    with rt.sessions.begin() as session:
        customers = [c["name"] for c in directory_listings.customers(session)]
    values: dict[str, Any] = {"page": found, "asked": asked, "customers": customers}
    values |= {"error": "", "period": None}
    if found.needs_customer and not asked["customer"]:
        return Shown(found.template, values)  # the form alone: whose history?
    try:
        period = _period(asked, zone)
        with transaction(rt.sessions, readonly=True) as conn:
            ref = queries.customer_named(conn, asked["customer"]) if asked["customer"] else None
            if asked["customer"] and ref is None:
                raise BadPeriod(f"no customer named {asked['customer']!r}")
            values |= found.build(conn, period, rt.now(), ref)
    except BadPeriod as exc:
        return Shown(found.template, {**values, "error": str(exc)}, 400)
    return Shown(found.template, {**values, "period": period})


def _period(asked: dict[str, str], zone: str) -> Period:
    if asked["from"] or asked["to"]:
        try:
            first, last = date.fromisoformat(asked["from"]), date.fromisoformat(asked["to"])
        except ValueError:
            raise BadPeriod("give both days as YYYY-MM-DD, or a quarter such as 2026Q4") from None
        return periods.days(first, last, zone)
    return periods.quarter(asked["quarter"], zone)


ROUTES: tuple[Spec, ...] = (
    page("/reports", reports_index),
    page("/reports/{name}", report_page),
)
