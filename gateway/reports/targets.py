"""The targets the attainment report measures against, as the contract states them (§3.5.3,
R3.2, R3.5), with the hours each is measured in.

The clocks themselves run on the table of gateway/sla/service_levels.py (`TARGETS`), which the
reports, beside sla and not above it, do not import; tests/test_reports.py checks that the two
agree. Whether an SR met its target is read from its stored Deadline, not from here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Goal:
    minutes: int  # in the hours below
    label: str
    standard_hours: bool  # True: working minutes of Business Hours – Standard; False: 24×7


WORKING_8 = Goal(8 * 60, "8 working hours", True)
# (SR type, priority or None for any) -> the Initial Response target
GOALS: dict[tuple[str, int | None], Goal] = {
    ("incident", 1): Goal(30, "30 minutes", False),
    ("incident", 2): Goal(2 * 60, "2 hours", False),
    ("incident", 3): Goal(24 * 60, "24 hours", False),
    ("incident", 4): Goal(2 * 24 * 60, "2 days", False),
    ("securehands", None): WORKING_8,
    ("technical_baseline_assessment", None): WORKING_8,
    ("vulnerability_assessment", None): WORKING_8,
}
STANDARD_HOURS_TYPES = tuple(kind for (kind, _), goal in GOALS.items() if goal.standard_hours)


def goal(request_type: str, priority: int) -> Goal | None:
    return GOALS.get((request_type, priority)) or GOALS.get((request_type, None))
