"""How the account-review mail states the reports' figures: times in the customer's office zone,
durations in hours and minutes, the figures' rows as the mail's lines (English only, §3.10)."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from gateway.outbound.contexts.reports import (
    AttainmentLine,
    EscalationLine,
    ExpiringLotLine,
    HistoryLine,
    OpenLine,
    UnitsMonthLine,
    UnitsSection,
)
from gateway.reports.attainment import Line
from gateway.reports.history import Entry, EscalationEntry, OpenEntry
from gateway.reports.units import CustomerUnits
from gateway.reports.units import shown as units

TYPES = {
    "incident": "Incident",
    "securehands": "SecureHands",
    "technical_baseline_assessment": "Technical Baseline Assessment",
    "vulnerability_assessment": "Security Assessment Scan",
}
LEVELS = {"duty_management": "Duty Management", "director": "Director level"}
SOURCES = {"customer": "asked for by the customer", "soc": "recorded by the SOC after a call"}
STEPS = {
    "opened": "opened",
    "duty_management_alerted": "Duty Management alerted",
    "account_manager_notified": "Account Manager notified",
    "service_delivery_manager_notified": "Service Delivery Manager notified",
    "requester_told": "requester told",
    "requested_again": "asked again",
    "plan_given": "plan given to the customer",
    "director_escalated": "Director level",
    "closed": "closed",
}


def when(instant: datetime | None, zone: ZoneInfo) -> str:
    return f"{instant.astimezone(zone):%Y-%m-%d %H:%M %Z}" if instant else "–"


def day(value: date) -> str:
    return f"{value.day} {value:%B %Y}"


def span(minutes: float | None, working: bool = False) -> str:
    """12 minutes as "12m", 1,530 as "1d 1h 30m"; "working" marks Business Hours – Standard."""
    if minutes is None:
        return "–"
    whole = round(minutes)
    days, rest = divmod(whole, 24 * 60)
    hours, mins = divmod(rest, 60)
    text = " ".join(
        part for part in (f"{days}d" if days else "", f"{hours}h" if hours else "") if part
    )
    text = f"{text} {mins}m".strip() if mins or not text else text
    return f"{text} working" if working else text


def share(percent: float | None) -> str:
    return f"{percent:.1f} %" if percent is not None else "–"


def attainment_line(line: Line) -> AttainmentLine:
    working = line.hours == "standard"
    return AttainmentLine(
        label=f"{TYPES.get(line.type or '', line.type)} P{line.priority}",
        target=line.target or "–",
        requests=line.requests,
        met=line.met,
        warned=line.warned,
        missed=line.missed,
        running=line.running,
        attainment=share(line.attainment_percent),
        median=span(line.median_minutes, working),
        p90=span(line.p90_minutes, working),
        alerts=line.not_updated_alerts,
    )


def history_line(entry: Entry, zone: ZoneInfo) -> HistoryLine:
    asked = entry.priority_requested
    priority = f"P{entry.priority}" + (f" (asked for P{asked})" if asked else "")
    levels = {e.level for e in entry.escalations}
    reached = "director" if "director" in levels else next(iter(levels), "")
    escalation = LEVELS.get(reached, reached)
    return HistoryLine(
        sr_id=entry.sr_id,
        title=entry.title,
        type=TYPES.get(entry.type, entry.type),
        priority=priority,
        product=entry.product or "–",
        state=entry.state,
        opened=when(entry.opened_at, zone),
        initial_response=when(entry.initial_response_at, zone),
        resolved=when(entry.resolved_at, zone),
        closed=when(entry.closed_at, zone),
        escalation=escalation,
    )


def escalation_line(sr_id: str, escalation: EscalationEntry, zone: ZoneInfo) -> EscalationLine:
    return EscalationLine(
        sr_id=sr_id,
        opened=when(escalation.opened_at, zone),
        source=SOURCES.get(escalation.source, escalation.source),
        requested_by=escalation.requested_by,
        level=LEVELS.get(escalation.level, escalation.level),
        closed=when(escalation.closed_at, zone) if escalation.closed_at else "still open",
        steps=[f"{when(s.at, zone)}  {STEPS.get(s.step, s.step)}" for s in escalation.steps],
    )


def open_line(entry: OpenEntry, zone: ZoneInfo) -> OpenLine:
    return OpenLine(
        sr_id=entry.sr_id,
        title=entry.title,
        priority=entry.priority,
        state=entry.state,
        opened=when(entry.opened_at, zone),
        last_update_at=when(entry.last_update_at, zone),
        last_update_by=entry.last_update_by or "",
        last_update=" ".join(entry.last_update.split()),
    )


def units_section(found: CustomerUnits, as_of: datetime, expiring_days: int) -> UnitsSection:
    zone = ZoneInfo(found.timezone)
    months = [
        UnitsMonthLine(
            month=f"{date.fromisoformat(f'{m.month}-01'):%B %Y}",
            purchased=units(m.purchased),
            reserved=units(m.reserved),
            released=units(m.released),
            consumed=units(m.consumed),
            forfeited=units(m.forfeited),
            expired=units(m.expired),
            credited=units(m.credited),
            available=units(m.available_at_end),
        )
        for m in found.months
    ]
    lots = [
        ExpiringLotLine(
            reference=lot.reference or "no reference",
            last_valid_day=day(lot.last_valid_day),
            days_left=lot.days_left,
            left=units(lot.left),
            uncovered=units(lot.uncovered),
        )
        for lot in found.expiring
    ]
    return UnitsSection(
        available_at_start=units(found.total.available_at_start),
        months=months,
        reserved_at_end=units(found.total.reserved_at_end),
        available_at_end=units(found.total.available_at_end),
        expiring_days=expiring_days,
        as_of=day(as_of.astimezone(zone).date()),
        expiring=lots,
    )
