"""Business Hours – Premium (24×7) and – Standard (09:00–17:00 Mon–Fri) (§1.3, R3.1).

Standard hours run in the contracting office's time zone, daylight saving time included; public
holidays come from the `holidays` package for the customer's country and region.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    import holidays

DAY_START = time(9, 0)
DAY_END = time(17, 0)
WORKING_DAY = timedelta(hours=8)
_LOOKUP = threading.Lock()  # holidays objects fill in new years lazily, not thread-safely
_MAX_DAYS = 3660  # a loop bound: ten years of calendar


@dataclass(frozen=True)
class Calendar:
    """A working-time calendar. `premium=True` is 24×7 including holidays."""

    timezone: str = "UTC"
    country: str | None = None
    subdivision: str | None = None
    premium: bool = False

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def is_working_day(self, day: date) -> bool:
        if self.premium:
            return True
        return day.weekday() < 5 and not _is_holiday(self.country, self.subdivision, day)

    def is_working_time(self, instant: datetime) -> bool:
        if self.premium:
            return True
        local = instant.astimezone(self.zone)
        return self.is_working_day(local.date()) and DAY_START <= local.time() < DAY_END

    def add_working_hours(self, instant: datetime, hours: float) -> datetime:
        """The instant at which `hours` of working time have passed since `instant`."""
        return self.add_working_time(instant, timedelta(hours=hours))

    def add_working_days(self, instant: datetime, days: int) -> datetime:
        """`days` working days later: days × 8 working hours on Standard, days × 24 h on Premium."""
        if self.premium:
            return self.add_working_time(instant, timedelta(days=days))
        return self.add_working_time(instant, WORKING_DAY * days)

    def add_working_time(self, instant: datetime, amount: timedelta) -> datetime:
        _require_aware(instant)
        if amount < timedelta(0):
            raise ValueError("working time cannot be negative")
        instant = instant.astimezone(UTC)  # elapsed time, not clock-face time, across DST
        if self.premium:
            return instant + amount
        remaining = amount
        for start, end in self._windows(instant):
            begin = max(start, instant)
            if begin + remaining <= end:
                return (begin + remaining).astimezone(UTC)
            remaining -= end - begin
        raise ValueError("working time beyond ten years")

    def working_time_between(self, start: datetime, end: datetime) -> timedelta:
        """Working time from `start` to `end` (zero if `end` is not after `start`)."""
        _require_aware(start)
        _require_aware(end)
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        if end <= start:
            return timedelta(0)
        if self.premium:
            return end - start
        total = timedelta(0)
        for window_start, window_end in self._windows(start):
            if window_start >= end:
                break
            total += min(window_end, end) - max(window_start, start)
        return total

    def _windows(self, instant: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Working windows (UTC start, UTC end) from the day of `instant` on, past ones skipped."""
        zone = self.zone
        day = instant.astimezone(zone).date()
        for _ in range(_MAX_DAYS):
            if self.is_working_day(day):
                start = datetime.combine(day, DAY_START, zone).astimezone(UTC)
                end = datetime.combine(day, DAY_END, zone).astimezone(UTC)
                if end > instant:
                    yield start, end
            day += timedelta(days=1)


PREMIUM = Calendar(premium=True)


def _require_aware(instant: datetime) -> None:
    if instant.tzinfo is None:
        raise ValueError("working-time arithmetic needs an aware datetime")


def _is_holiday(country: str | None, subdivision: str | None, day: date) -> bool:
    if not country:
        return False
    table = _holidays(country.upper(), subdivision)
    with _LOOKUP:
        return day in table


@lru_cache(maxsize=64)
def _holidays(country: str, subdivision: str | None) -> holidays.HolidayBase:
    import holidays  # at the first calendar with a country: listings only format times (iso)

    return holidays.country_holidays(country, subdiv=subdivision)


def iso(value: datetime | None) -> str | None:
    """An instant as ISO 8601 for listings and JSON; None stays None."""
    return value.isoformat() if value else None
