"""How the reports sum up a list of times: median, 90th percentile, minutes, shares."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def median(values: Sequence[float]) -> float | None:
    """The middle value; for an even count, the mean of the two middle ones."""
    return round(statistics.median(values), 2) if values else None


def p90(values: Sequence[float]) -> float | None:
    """The 90th percentile by nearest rank: the smallest value that at least 90 % of the
    values do not exceed (the ceil(0.9 × n)-th smallest), always one of the values."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[math.ceil(0.9 * len(ordered)) - 1], 2)


def minutes(seconds: float) -> float:
    """Seconds as minutes, to the hundredth (the databases' time arithmetic is exact to the
    millisecond)."""
    return round(seconds / 60, 2)


def percent(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None
