"""The SecureHands Deadlines, armed: acceptance (§3.11.6), the query investigation (§3.11.7),
the top-up reminder (§3.11.2), a lot's reminders and expiry (§3.11), the remediation-scan
reminder (§3.13.1); and a session's scheduling target stopped (§3.11.5: it is a service-level
target, armed by sla/service_levels.py). What each one's passing does is deadlines.py."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import Connection

from gateway.core.hours import Calendar
from gateway.securehands.queries import CustomerRow, NewClock, add_clock, stop_clocks

SCHEDULING = "scheduling"  # the service-level target's kind (sla/service_levels.py)
ACCEPTANCE = "session_acceptance"
QUERY = "session_query"
TOPUP = "units_topup"
EXPIRING = "units_expiring"
EXPIRY = "units_expiry"
REMEDIATION = "scan_remediation"

ACCEPT_AFTER_DAYS = 2  # §3.11.6: working days after the statement was sent
INVESTIGATE_DAYS = 5  # §3.11.7: working days after the query
TOPUP_AFTER = timedelta(days=30)  # §3.11.2: a purchase order within 30 days of the quote
REMIND_BEFORE_DAYS = (90, 30)  # §3.11: units not covered by an agreed SOW
REQUEST_WITHIN_DAYS, PERFORM_WITHIN_DAYS, REMIND_DAYS = 30, 45, 7  # §3.13.1
REMINDER_TIME = time(9, 0)  # reminders go out at the start of the customer's working day


def local(day: date, at: time, calendar: Calendar) -> datetime:
    return datetime.combine(day, at, calendar.zone).astimezone(UTC)


def stop_scheduling(conn: Connection, session_id: int, now: datetime) -> int:
    """The session no longer waits to be scheduled (scheduled, cancelled, delivered): its
    scheduling target ends. A warning or breach already raised stays recorded."""
    return stop_clocks(conn, (SCHEDULING,), now, session_id=session_id)


def arm_acceptance(
    conn: Connection, session_id: int, sr_id: int, sent: datetime, calendar: Calendar
) -> datetime:
    """§3.11.6: accepted 2 working days after the statement was sent, on the customer's
    Business Hours – Standard."""
    due = calendar.add_working_days(sent, ACCEPT_AFTER_DAYS)
    add_clock(conn, NewClock(ACCEPTANCE, sent, due, sent, sr_id=sr_id, session_id=session_id))
    return due


def arm_query(
    conn: Connection,
    session_id: int,
    sr_id: int,
    received: datetime,
    calendar: Calendar,
    warn_fraction: float,
) -> datetime:
    """§3.11.7: SOC management decides within 5 working days; warned at `warn_fraction`."""
    due = calendar.add_working_days(received, INVESTIGATE_DAYS)
    warn = calendar.add_working_time(
        received, calendar.working_time_between(received, due) * warn_fraction
    )
    clock = NewClock(QUERY, received, due, received, sr_id, session_id, warn_at=warn)
    add_clock(conn, clock)
    return due


def arm_topup(conn: Connection, sr_id: int, noticed: datetime) -> datetime:
    due = noticed + TOPUP_AFTER
    add_clock(conn, NewClock(TOPUP, noticed, due, noticed, sr_id=sr_id))
    return due


def arm_lot(
    conn: Connection, customer: CustomerRow, lot_id: int, expires_on: date, now: datetime
) -> None:
    """A lot's reminders (those still ahead) and its expiry, at 00:00 of `expires_on`."""
    for days in REMIND_BEFORE_DAYS:
        due = local(expires_on - timedelta(days=days), REMINDER_TIME, customer.calendar)
        if due > now:
            add_clock(conn, NewClock(EXPIRING, now, due, now, lot_id=lot_id))
    due = max(local(expires_on, time(0), customer.calendar), now)
    add_clock(conn, NewClock(EXPIRY, now, due, now, lot_id=lot_id))


def remediation_dates(reviewed_on: date) -> tuple[date, date]:
    """§3.13.1: the last days to request and to perform the remediation scan."""
    return (
        reviewed_on + timedelta(days=REQUEST_WITHIN_DAYS),
        reviewed_on + timedelta(days=PERFORM_WITHIN_DAYS),
    )


def arm_remediation(
    conn: Connection, sr_id: int, reviewed_on: date, calendar: Calendar, now: datetime
) -> None:
    """The reminder 7 days before the 30-day window to request the remediation scan closes."""
    request_by, _ = remediation_dates(reviewed_on)
    due = local(request_by - timedelta(days=REMIND_DAYS), REMINDER_TIME, calendar)
    if due > now:
        add_clock(conn, NewClock(REMEDIATION, now, due, now, sr_id=sr_id))
