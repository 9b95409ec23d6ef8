"""Business Hours – Standard and – Premium (R3.1): weekends, holidays, daylight saving time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.core.hours import PREMIUM, Calendar
from gateway.core.settings import Settings
from gateway.sla.service_levels import due_at, initial_response

BERLIN = Calendar("Europe/Berlin", "DE")
NEW_YORK = Calendar("America/New_York", "US")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_eight_working_hours_from_friday_afternoon_end_on_monday_afternoon() -> None:
    friday_16 = utc(2026, 11, 20, 15, 0)  # 16:00 in Berlin (CET)
    assert BERLIN.add_working_hours(friday_16, 8) == utc(2026, 11, 23, 15, 0)


def test_german_unity_day_is_not_a_working_day() -> None:
    thursday_16 = utc(2025, 10, 2, 14, 0)  # 16:00 CEST; Friday 3 October 2025 is a holiday
    assert BERLIN.add_working_hours(thursday_16, 8) == utc(2025, 10, 6, 14, 0)
    assert BERLIN.working_time_between(thursday_16, utc(2025, 10, 6, 14, 0)) == timedelta(hours=8)


def test_working_time_crosses_the_spring_clock_change_in_local_hours() -> None:
    friday_16 = utc(2026, 3, 27, 15, 0)  # 16:00 CET; clocks go forward on Sunday 29 March
    assert BERLIN.add_working_hours(friday_16, 2) == utc(2026, 3, 30, 8, 0)  # 10:00 CEST


def test_new_york_hours_follow_us_daylight_saving_and_holidays() -> None:
    wednesday_16 = utc(2026, 11, 25, 21, 0)  # 16:00 EST; Thursday 26 November is Thanksgiving
    assert NEW_YORK.add_working_hours(wednesday_16, 2) == utc(2026, 11, 27, 15, 0)


def test_working_days_are_eight_working_hours_each() -> None:
    monday_9 = utc(2026, 11, 16, 8, 0)
    assert BERLIN.add_working_days(monday_9, 2) == utc(2026, 11, 17, 16, 0)


@pytest.mark.parametrize(
    ("instant", "working"),
    [
        (utc(2026, 11, 18, 8, 0), True),  # Wednesday 09:00 Berlin
        (utc(2026, 11, 18, 16, 0), False),  # Wednesday 17:00 Berlin
        (utc(2026, 11, 21, 10, 0), False),  # Saturday
        (utc(2026, 12, 25, 10, 0), False),  # Christmas Day
    ],
)
def test_is_working_time(instant: datetime, working: bool) -> None:
    assert BERLIN.is_working_time(instant) is working
    assert PREMIUM.is_working_time(instant)


def test_premium_time_runs_round_the_clock() -> None:
    saturday = utc(2026, 11, 21, 22, 0)
    assert PREMIUM.add_working_hours(saturday, 24) == utc(2026, 11, 22, 22, 0)
    assert PREMIUM.working_time_between(saturday, utc(2026, 11, 22, 22, 0)) == timedelta(hours=24)


@pytest.mark.parametrize(
    ("kind", "priority", "expected"),
    [
        ("incident", 1, utc(2026, 11, 21, 22, 30)),
        ("incident", 2, utc(2026, 11, 22, 0, 0)),
        ("incident", 3, utc(2026, 11, 22, 22, 0)),
        ("incident", 4, utc(2026, 11, 23, 22, 0)),
        ("securehands", 3, utc(2026, 11, 23, 16, 0)),  # 8 working hours: all of Monday
        ("vulnerability_assessment", 3, utc(2026, 11, 23, 16, 0)),
    ],
)
def test_initial_response_targets_run_on_their_calendar(
    kind: str, priority: int, expected: datetime
) -> None:
    saturday_23 = utc(2026, 11, 21, 22, 0)
    assert due_at(initial_response(kind, priority, Settings()), saturday_23, BERLIN) == expected


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        BERLIN.add_working_hours(datetime(2026, 11, 18, 9, 0), 1)
