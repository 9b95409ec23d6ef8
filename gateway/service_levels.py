"""Service-level targets as a table (§3.5.3, §3.11.5, §3.13.3), turned into Deadlines."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.hours import PREMIUM, Calendar


@dataclass(frozen=True)
class Target:
    """How long a clock runs, and on which Business Hours."""

    amount: timedelta
    standard_hours: bool  # True: Business Hours – Standard; False: Premium 24×7
    label: str  # how the acknowledgement states it


# Initial Response targets (R3.2, R3.5). SecureCall is Premium only (§2.1), so incidents run 24×7.
# SecureHands and Technical Baseline Assessments (a SecureHands delivery, §3.12.1) and Security
# Assessment Scans run on Business Hours – Standard: 8 working hours (German text of §3.11.5).
INITIAL_RESPONSE: dict[tuple[str, int | None], Target] = {
    ("incident", 1): Target(timedelta(minutes=30), False, "30 minutes"),
    ("incident", 2): Target(timedelta(hours=2), False, "2 hours"),
    ("incident", 3): Target(timedelta(hours=24), False, "24 hours"),
    ("incident", 4): Target(timedelta(days=2), False, "2 days"),
    ("securehands", None): Target(timedelta(hours=8), True, "8 working hours"),
    ("technical_baseline_assessment", None): Target(timedelta(hours=8), True, "8 working hours"),
    ("vulnerability_assessment", None): Target(timedelta(hours=8), True, "8 working hours"),
}


def initial_response(request_type: str, priority: int) -> Target:
    return INITIAL_RESPONSE.get((request_type, None)) or INITIAL_RESPONSE[("incident", priority)]


def due_at(target: Target, start: datetime, standard: Calendar) -> datetime:
    """When a target that starts at `start` falls due, on the calendar it runs on."""
    calendar = standard if target.standard_hours else PREMIUM
    return calendar.add_working_time(start, target.amount)
