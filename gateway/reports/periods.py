"""The periods a report covers: whole days in the SOC's time zone, or a quarter (§3.10: one
account review per quarter), and when the quarterly review mail goes out."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from gateway.core.hours import Calendar

_QUARTER = re.compile(r"(\d{4})\s*-?\s*Q([1-4])", re.IGNORECASE)


class BadPeriod(ValueError):
    """A period that cannot be read, or that ends before it begins."""


@dataclass(frozen=True)
class Period:
    """The days `first` to `last`, both included, in `timezone`."""

    first: date
    last: date
    timezone: str

    @property
    def start(self) -> datetime:
        return _midnight(self.first, self.timezone)

    @property
    def end(self) -> datetime:
        """The first instant after the period."""
        return _midnight(self.last + timedelta(days=1), self.timezone)

    @property
    def quarter(self) -> str | None:
        """ "2026 Q4" when the period is exactly a quarter."""
        year, number = quarter_of(self.first)
        if self.first == quarter_start(year, number) and self.last == _quarter_last(year, number):
            return f"{year} Q{number}"
        return None

    @property
    def label(self) -> str:
        return self.quarter or f"{self.first:%Y-%m-%d} to {self.last:%Y-%m-%d}"

    def months(self) -> list[str]:
        """Each month the period touches, as YYYY-MM."""
        months, day = [], self.first.replace(day=1)
        while day <= self.last:
            months.append(f"{day:%Y-%m}")
            day = (day + timedelta(days=32)).replace(day=1)
        return months


def days(first: date, last: date, timezone: str) -> Period:
    if last < first:
        raise BadPeriod(f"the period ends ({last}) before it begins ({first})")
    return Period(first, last, timezone)


def quarter(text: str, timezone: str) -> Period:
    """ "2026Q4" (also "2026-Q4", "2026 q4") as its days."""
    found = _QUARTER.fullmatch(text.strip())
    if not found:
        raise BadPeriod(f"not a quarter such as 2026Q4: {text!r}")
    year, number = int(found.group(1)), int(found.group(2))
    return Period(quarter_start(year, number), _quarter_last(year, number), timezone)


def quarter_of(day: date) -> tuple[int, int]:
    return day.year, (day.month - 1) // 3 + 1


def quarter_start(year: int, number: int) -> date:
    return date(year, 3 * (number - 1) + 1, 1)


def _quarter_last(year: int, number: int) -> date:
    following = quarter_start(year + 1, 1) if number == 4 else quarter_start(year, number + 1)
    return following - timedelta(days=1)


def quarter_before(instant: datetime, timezone: str) -> Period:
    """The quarter that ended last before `instant` (local date in `timezone`)."""
    year, number = quarter_of(instant.astimezone(ZoneInfo(timezone)).date())
    year, number = (year - 1, 4) if number == 1 else (year, number - 1)
    return Period(quarter_start(year, number), _quarter_last(year, number), timezone)


def first_working_day(year: int, number: int, calendar: Calendar) -> date:
    day = quarter_start(year, number)
    while not calendar.is_working_day(day):
        day += timedelta(days=1)
    return day


def next_review(at: str, calendar: Calendar, after: datetime) -> datetime:
    """The next `at` (HH:MM, in the calendar's zone) on the first working day of a quarter,
    strictly after `after`."""
    hour, minute = (int(part) for part in at.split(":"))
    year, number = quarter_of(after.astimezone(calendar.zone).date())
    for _ in range(3):
        day = first_working_day(year, number, calendar)
        candidate = datetime.combine(day, time(hour, minute), calendar.zone).astimezone(UTC)
        if candidate > after:
            return candidate
        year, number = (year + 1, 1) if number == 4 else (year, number + 1)
    raise BadPeriod(f"no review time after {after}")  # three quarters always hold one


def _midnight(day: date, timezone: str) -> datetime:
    return datetime.combine(day, time(0, 0), ZoneInfo(timezone)).astimezone(UTC)
