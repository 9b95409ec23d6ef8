"""§3.10: the quarterly account-review mail to each customer's TAM and Account Manager: the
quarter's SR history and service-level attainment, its escalations, the SRs still open, and
three charts; for a customer with SecureHands units, the quarter's units and a fourth chart
(the Account Manager hears of expiring units anyway, §3.11). Written as Deliveries in the
caller's transaction (by the clock, or on demand)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from gateway.core.runtime import Runtime
from gateway.core.vocabulary import Audience
from gateway.outbound.contexts.reports import AccountReview, InlineImage
from gateway.outbound.notices import alert
from gateway.outbound.outbox import BULK_QUEUE
from gateway.reports import figures, queries, wording
from gateway.reports.attainment import Attainment, attainment
from gateway.reports.escalations import EscalationAnalysis, analysis
from gateway.reports.history import History, history
from gateway.reports.periods import Period
from gateway.reports.queries import CustomerRef
from gateway.reports.units import EXPIRING_DAYS, CustomerUnits, units_report

Deliveries = list[tuple[int, str]]
ROLES = {"tam": "TAM", "account_manager": "Account Manager"}  # who gets it, in this order
HISTORY_LIMIT = 500  # SRs listed in one mail; the rest are counted (the CLI lists them all)


@dataclass(frozen=True)
class Reports:
    attainment: Attainment
    history: History
    escalations: EscalationAnalysis
    units: CustomerUnits | None  # None: the customer never had SecureHands units


def gather(conn: Connection, customer: CustomerRef, period: Period, now: datetime) -> Reports:
    units = units_report(conn, period, now, customer.name, customer.id).customers
    return Reports(
        attainment(conn, period, now, customer.name, customer.id),
        history(conn, customer.name, customer.id, period, now),
        analysis(conn, period, now, customer.name, customer.id),
        units[0] if units else None,
    )


def send_review(
    conn: Connection, rt: Runtime, customer: CustomerRef, period: Period, now: datetime
) -> Deliveries:
    """One mail to each of the customer's TAMs and Account Managers; none if it has neither."""
    recipients = queries.contacts_in_roles(conn, customer.id, tuple(ROLES))
    if not recipients:
        return []
    reports = gather(conn, customer, period, now)
    images = _charts(reports, period, rt.settings.domain)
    deliveries = []
    for person in recipients:
        context = _context(reports, customer, period, now, images, person.name, ROLES[person.role])
        deliveries.append(
            alert(
                conn,
                rt,
                template="account_review",
                recipient=person.address,
                context=context,
                now=now,
                audience=Audience.staff,
                label=f"review-{period.label.replace(' ', '')}",
                queue=BULK_QUEUE,  # many at once each quarter: never ahead of an acknowledgement
            )
        )
    return deliveries


def send_reviews(conn: Connection, rt: Runtime, period: Period, now: datetime) -> Deliveries:
    """Every customer's review of `period` (the clock's quarterly job)."""
    deliveries: Deliveries = []
    for customer in queries.customers_with_roles(conn, tuple(ROLES)):
        deliveries += send_review(conn, rt, customer, period, now)
    return deliveries


def _context(
    reports: Reports,
    customer: CustomerRef,
    period: Period,
    now: datetime,
    images: list[InlineImage],
    name: str,
    role: str,
) -> AccountReview:
    zone = ZoneInfo(customer.timezone)
    found, esc = reports.history, reports.escalations
    listed = found.requests[:HISTORY_LIMIT]
    escalation_lines = [
        wording.escalation_line(entry.sr_id, e, zone) for entry in listed for e in entry.escalations
    ]
    return AccountReview(
        name=name,
        role=role,
        customer=customer.name,
        quarter=period.label,
        period=f"{wording.day(period.first)} to {wording.day(period.last)} in SOC time, "
        f"{period.timezone}",
        timezone=customer.timezone,
        generated=wording.when(now, zone),
        requests=reports.attainment.total.requests,
        attainment=wording.share(reports.attainment.total.attainment_percent),
        attainment_lines=[wording.attainment_line(line) for line in reports.attainment.groups],
        alerts=reports.attainment.total.not_updated_alerts,
        history=[wording.history_line(entry, zone) for entry in listed],
        not_listed=len(found.requests) - len(listed),
        escalations=escalation_lines,
        escalation_total=esc.total.escalations,
        escalation_director=esc.total.director,
        plan_median=wording.span(esc.total.plan_median_minutes),
        open=[wording.open_line(entry, zone) for entry in found.open],
        images=images,
        units=(
            wording.units_section(reports.units, now, EXPIRING_DAYS)
            if reports.units is not None
            else None
        ),
    )


def _charts(reports: Reports, period: Period, domain: str) -> list[InlineImage]:
    token = secrets.token_hex(6)  # Content-IDs are to be unique (RFC 2392)
    drawn = [
        ("attainment", "Initial Response targets per priority",
         figures.attainment_chart(reports.attainment, period.label)),
        ("response", "Time to Initial Response as a share of its target",
         figures.response_chart(reports.attainment)),
        ("escalations", "Escalations per month", figures.escalations_chart(reports.escalations)),
    ]  # fmt: skip
    if reports.units is not None:
        drawn.append(("units", "SecureHands units per month", figures.units_chart(reports.units)))
    return [
        InlineImage(
            cid=f"{name}.{token}@{domain}",
            filename=f"{name}.png",
            alt=alt,
            svg=chart.svg,
            width=chart.width,
            height=chart.height,
        )
        for name, alt, chart in drawn
    ]
