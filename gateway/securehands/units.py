"""§3.11.2: what a SecureHands session costs, and how long units stay valid. Pure arithmetic.

A session is charged the time spent, in hours, rounded up to the next whole hour; an hour inside
Business Hours – Standard of the customer's office is one unit, an hour outside costs the SOW's
rate. A session across the boundary: the total is rounded up first; of those hours, the part at
the dearer rate (outside, unless the SOW's rate is below 1) counts its own time rounded up (never
more than the total), the rest are at the other rate. So the hour that straddles the boundary
is charged at the dearer rate, and a longer session never costs fewer units than a shorter one.
A SOW with a fixed number of units per session costs that, whatever the time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from gateway.core.hours import Calendar

HOUR = timedelta(hours=1)
ONE = Decimal(1)
CENT = Decimal("0.01")
VALIDITY_MONTHS = 12  # §3.11.2, §3.13.1


@dataclass(frozen=True)
class Count:
    """How a session's units were counted, as its statement shows them."""

    spent: timedelta  # the time the session took (or was planned to take)
    hours: int  # charged: the time spent rounded up to the next whole hour
    inside: int  # of them, inside Business Hours – Standard, at one unit each
    outside: int  # of them, outside, at `rate` units each
    rate: Decimal  # units per hour outside Business Hours – Standard (the SOW's)
    fixed: Decimal | None  # the SOW's fixed units per session, which then are the cost
    units: Decimal

    def as_json(self) -> dict[str, object]:
        return {
            "minutes": int(self.spent.total_seconds() // 60),
            "hours": self.hours,
            "inside": self.inside,
            "outside": self.outside,
            "rate": shown(self.rate),
            "fixed": None if self.fixed is None else shown(self.fixed),
            "units": shown(self.units),
        }


def count(
    start: datetime,
    end: datetime,
    calendar: Calendar,
    *,
    fixed: Decimal | None = None,
    rate: Decimal = ONE,
) -> Count:
    """The units of a session from `start` to `end` (aware instants) for a customer's calendar."""
    # elapsed time, not clock-face time: two instants of one zone subtract as wall clocks
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if end < start:
        raise ValueError("a session cannot end before it starts")
    if rate < 0 or (fixed is not None and fixed < 0):
        raise ValueError("units and rates are never negative")
    spent = end - start
    hours = _whole_hours(spent)
    within = calendar.working_time_between(start, end)
    if rate >= ONE:
        outside = min(hours, _whole_hours(spent - within))
        inside = hours - outside
    else:
        inside = min(hours, _whole_hours(within))
        outside = hours - inside
    units = fixed if fixed is not None else (inside + outside * rate).quantize(CENT)
    return Count(spent, hours, inside, outside, rate, fixed, units)


def _whole_hours(span: timedelta) -> int:
    """Rounded up to the next whole hour (§3.11.2); no time is no hour."""
    return -(-span // HOUR)


def expiry(start: date, months: int = VALIDITY_MONTHS) -> date:
    """The first day no longer valid: the same day `months` later (29 February: 1 March)."""
    years, month = divmod(start.month - 1 + months, 12)
    year, month = start.year + years, month + 1
    try:
        return start.replace(year=year, month=month)
    except ValueError:  # no such day in that month: valid to its end
        return (date(year, month, 28) + timedelta(days=4)).replace(day=1)


def shown(units: Decimal) -> str:
    """Units as mails and listings state them: 5, 4.5, 2.25."""
    text = f"{units.quantize(CENT):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text
