"""`gateway reports`: service-level attainment, SR history, escalation analysis, SecureHands units
(§3.5.5, §3.7, §3.10, §3.11.2) as a table, JSON or CSV; and the quarterly account-review mail on
demand."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, TypeVar
from zoneinfo import ZoneInfo

import typer
from sqlalchemy import Connection

from cli.output import date_option, fail, table
from cli.runtime import runtime
from gateway.core.runtime import Runtime
from gateway.reports import export, periods, queries, review
from gateway.reports.attainment import attainment
from gateway.reports.escalations import analysis
from gateway.reports.export import Report
from gateway.reports.history import history
from gateway.reports.periods import BadPeriod, Period
from gateway.reports.units import UnitsReport, units_report
from gateway.storage.db import transaction

reports = typer.Typer(
    no_args_is_help=True,
    help="Reports: service levels, SR history, escalations, SecureHands units (§3.10).",
)
GROUPS = ((reports, "reports"),)

Customer = Annotated[
    str | None, typer.Option("--customer", help="A customer's name; without it: all customers.")
]
First = Annotated[str | None, typer.Option("--from", help="First day, YYYY-MM-DD (SOC time).")]
Last = Annotated[str | None, typer.Option("--to", help="Last day, YYYY-MM-DD, included.")]
Quarter = Annotated[str | None, typer.Option("--quarter", help="Instead of --from/--to: 2026Q4.")]
AsOf = Annotated[
    str | None,
    typer.Option("--as-of", help="What was known at this instant (ISO 8601); default: now."),
]
R = TypeVar("R", bound=Report)
Json = Annotated[bool, typer.Option("--json", help="Print JSON.")]
Csv = Annotated[bool, typer.Option("--csv", help="Print CSV (one table, a header row first).")]


@reports.command("sla")
def sla(
    customer: Customer = None,
    first: First = None,
    last: Last = None,
    quarter: Quarter = None,
    as_of: AsOf = None,
    as_json: Json = False,
    as_csv: Csv = False,
) -> None:
    """Initial Response targets met, warned, missed per type and priority; times; alerts."""

    def build(conn: Connection, period: Period, when: datetime) -> Report:
        ref = _customer(conn, customer) if customer else None
        return attainment(conn, period, when, ref.name if ref else None, ref.id if ref else None)

    columns = ("scope", "customer", "type", "priority", "requests", "met", "warned", "missed")
    _show(build, first, last, quarter, as_of, as_json, as_csv, (*columns, "attainment_percent"))


@reports.command("history")
def history_of(
    customer: Annotated[str, typer.Option("--customer", help="The customer's name.")],
    first: First = None,
    last: Last = None,
    quarter: Quarter = None,
    as_of: AsOf = None,
    as_json: Json = False,
    as_csv: Csv = False,
) -> None:
    """One customer's SRs of the period, their escalations, and those still open (§3.10)."""

    def build(conn: Connection, period: Period, when: datetime) -> Report:
        ref = _customer(conn, customer)
        return history(conn, ref.name, ref.id, period, when)

    columns = ("sr_id", "priority", "type", "state", "opened_at", "closed_at", "title")
    _show(build, first, last, quarter, as_of, as_json, as_csv, columns)


@reports.command("escalations")
def escalations(
    customer: Customer = None,
    first: First = None,
    last: Last = None,
    quarter: Quarter = None,
    as_of: AsOf = None,
    as_json: Json = False,
    as_csv: Csv = False,
) -> None:
    """Escalations by customer and product: who asked, time to the plan, Director level."""

    def build(conn: Connection, period: Period, when: datetime) -> Report:
        ref = _customer(conn, customer) if customer else None
        return analysis(conn, period, when, ref.name if ref else None, ref.id if ref else None)

    columns = ("scope", "month", "customer", "product", "escalations", "planned", "director")
    _show(build, first, last, quarter, as_of, as_json, as_csv, (*columns, "plan_median_minutes"))


@reports.command("units")
def units(
    customer: Customer = None,
    first: Annotated[
        str | None, typer.Option("--from", help="First day, YYYY-MM-DD (customer's office time).")
    ] = None,
    last: Last = None,
    quarter: Quarter = None,
    as_of: AsOf = None,
    as_json: Json = False,
    as_csv: Csv = False,
) -> None:
    """SecureHands units per month: purchased, reserved, consumed, forfeited, expired, credited;
    the lots that expire in the next 90 days."""

    def build(conn: Connection, period: Period, when: datetime) -> UnitsReport:
        ref = _customer(conn, customer) if customer else None
        return units_report(conn, period, when, ref.name if ref else None, ref.id if ref else None)

    _show(build, first, last, quarter, as_of, as_json, as_csv, (), text=_units_tables)


# the text view: the six movements and what is available at the end, within 80 columns
UNIT_TEXT_COLUMNS = (
    *("month", "purchased", "reserved", "consumed", "forfeited", "expired", "credited"),
    "available",
)
UNIT_LOT_COLUMNS = ("reference", "last_valid_day", "days_left", "left", "uncovered")


def _units_tables(report: UnitsReport) -> None:
    """Per customer: its months and total, then its lots that expire soon."""
    if not report.customers:
        typer.echo("(none)")
    for found in report.customers:
        rows = [r for r in report.rows() if r["customer"] == found.customer]
        months = [
            r | {"month": r["month"] or "total", "available": r["available_at_end"]}
            for r in rows
            if r["scope"] != "lot"
        ]
        typer.echo(f"{found.customer}: SecureHands units per month ({found.timezone})")
        table(months, False, UNIT_TEXT_COLUMNS)
        day = report.as_of.astimezone(ZoneInfo(found.timezone))
        typer.echo(f"Lots that expire within {report.expiring_days} days of {day:%Y-%m-%d}:")
        table([r for r in rows if r["scope"] == "lot"], False, UNIT_LOT_COLUMNS)
        typer.echo("")


@reports.command("send-review")
def send_review(
    customer: Annotated[str, typer.Option("--customer", help="The customer's name.")],
    quarter: Annotated[str, typer.Option("--quarter", help="The quarter, e.g. 2026Q4.")],
) -> None:
    """Write the account-review mail of a quarter to the customer's TAM and Account Manager.

    The running gateway sends it (or the workers of GATEWAY_BROKER_URL).
    """
    with runtime() as rt:
        try:
            written = _write_review(rt, customer, quarter)
        finally:
            rt.outbox.broker.close()
    typer.echo(f"account review {written}")


def _write_review(rt: Runtime, name: str, quarter: str) -> str:
    with transaction(rt.sessions) as conn:
        ref = _customer(conn, name)
        period = _quarter(quarter, rt.settings.soc_timezone)
        recipients = queries.contacts_in_roles(conn, ref.id, tuple(review.ROLES))
        if not recipients:
            raise fail(f"{ref.name} has no contact with the role tam or account_manager")
        deliveries = review.send_review(conn, rt, ref, period, rt.now())
    rt.outbox.enqueue(deliveries)
    return f"{period.label} of {ref.name} to " + ", ".join(r.address for r in recipients)


def _show(
    build: Callable[[Connection, Period, datetime], R],
    first: str | None,
    last: str | None,
    quarter: str | None,
    as_of: str | None,
    as_json: bool,
    as_csv: bool,
    columns: tuple[str, ...],
    text: Callable[[R], None] | None = None,
) -> None:
    if as_json and as_csv:
        raise fail("--json or --csv, not both")
    with runtime(broker=False, writes=False) as rt:
        zone = rt.settings.soc_timezone
        period = _period(first, last, quarter, zone)
        when = _instant(as_of, zone) if as_of else rt.now()
        with transaction(rt.sessions, readonly=True) as conn:
            report = build(conn, period, when)
    if as_json:
        typer.echo(export.as_json(report))
    elif as_csv:
        typer.echo(export.as_csv(report), nl=False)
    elif text is not None:
        text(report)
    else:
        table(report.rows(), False, columns)


def _customer(conn: Connection, name: str) -> queries.CustomerRef:
    found = queries.customer_named(conn, name)
    if found is None:
        raise fail(f"no customer named {name!r}")
    return found


def _period(first: str | None, last: str | None, quarter: str | None, zone: str) -> Period:
    if quarter and not (first or last):
        return _quarter(quarter, zone)
    if quarter or not (first and last):
        raise fail("give --from and --to, or --quarter")
    try:
        return periods.days(date_option(first), date_option(last), zone)
    except BadPeriod as exc:
        raise fail(str(exc)) from None


def _quarter(text: str, zone: str) -> Period:
    try:
        return periods.quarter(text, zone)
    except BadPeriod as exc:
        raise fail(str(exc)) from None


def _instant(text: str, zone: str) -> datetime:
    """ISO 8601; without an offset, in the SOC's time zone."""
    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        raise fail(f"not an instant (ISO 8601, e.g. 2026-12-31T18:00:00+00:00): {text!r}") from None
    return instant if instant.tzinfo else instant.replace(tzinfo=ZoneInfo(zone))
