"""The reports' three charts, drawn from the reports themselves: for the account-review mail
(gateway/reports/review.py) and the admin web's report pages alike."""

from __future__ import annotations

from gateway.reports import charts, wording
from gateway.reports.attainment import Attainment
from gateway.reports.charts import Chart
from gateway.reports.escalations import EscalationAnalysis
from gateway.reports.units import CustomerUnits


def attainment_chart(report: Attainment, label: str) -> Chart:
    """Initial Responses met, warned, missed and running per type and priority."""
    rows = [
        charts.StackedRow(
            f"{wording.TYPES.get(g.type or '', g.type)} P{g.priority}",
            g.met,
            g.warned,
            g.missed,
            g.running,
        )
        for g in report.groups
    ]
    return charts.attainment_bars(f"Initial Response targets, {label}", rows)


def response_chart(report: Attainment) -> Chart:
    """The time to each Initial Response as a share of its target, with the target line."""
    shares = [
        100 * minutes / line.target_minutes
        for line in report.groups
        if line.target_minutes and line.type is not None and line.priority is not None
        for minutes in report.minutes.get((line.type, line.priority), [])
    ]
    return charts.histogram(
        "Time to Initial Response, share of its target",
        shares,
        100.0,
        tick=lambda v: f"{v:g} %",
        target_label="target",
    )


def escalations_chart(report: EscalationAnalysis) -> Chart:
    """Escalations per month, those that reached Director level darker."""
    months = [(m.month, m.escalations, m.director) for m in report.months]
    return charts.monthly_bars("Escalations per month", months)


def units_chart(found: CustomerUnits) -> Chart:
    """One customer's SecureHands units per month, by movement."""
    movements = [
        charts.UnitMonth(m.month or "", {kind: getattr(m, kind) for kind in charts.UNIT_KINDS})
        for m in found.months
    ]
    title = f"SecureHands units per month ({found.timezone})"
    return charts.unit_bars(title, movements)
