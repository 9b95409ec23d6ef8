"""The words of the SecureHands commands: `units=6 fixed=3 rate=1.5`, `2026-12-01T09:00/12:00`.

Times without an offset are the customer's office time (§3.11.1: sessions are arranged in it);
an ISO 8601 offset (`…T09:00+01:00`, `…Z`) is taken as written. Pure: text in, values out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from gateway.securehands.acts import Refused
from gateway.securehands.units import CENT, ONE

ONE_DAY = timedelta(days=1)
# The largest number a command may give (units, a rate, IPs, a session's number): far above any
# real purchase or SOW, far below what the ledger's columns hold
LARGEST = 1_000_000


@dataclass(frozen=True)
class SowTerms:
    """A SOW as agreed (§3.11.2): its planned units, fixed units per session, out-of-hours rate."""

    units: Decimal
    fixed: Decimal | None = None
    rate: Decimal = ONE


def options(argument: str, allowed: tuple[str, ...]) -> dict[str, str]:
    """`key=value` words; anything else is refused with what is allowed."""
    found: dict[str, str] = {}
    for word in argument.split():
        key, equals, value = word.partition("=")
        key = key.lower().replace("_", "-")
        if not equals or key not in allowed or not value:
            raise Refused(f"expected {' '.join(f'{a}=…' for a in allowed)}, not {word!r}")
        found[key] = value
    return found


def sow_terms(argument: str) -> SowTerms:
    """`units=N [fixed=N] [rate=R]` (SecureHands, Technical Baseline Assessment)."""
    given = options(argument, ("units", "fixed", "rate"))
    if "units" not in given:
        raise Refused("the SOW's planned units are needed: units=N")
    fixed = given.get("fixed")
    return SowTerms(
        units=amount(given["units"], "units"),
        fixed=amount(fixed, "fixed units") if fixed is not None else None,
        rate=amount(given.get("rate", "1"), "rate"),
    )


def amount(text: str, what: str) -> Decimal:
    """A positive number of units (or units per hour) with at most two decimals."""
    try:
        value = Decimal(text.strip().replace(",", "."))
    except InvalidOperation:
        raise Refused(f"{what}: not a number: {text!r}") from None
    if not value.is_finite() or value <= 0 or value > LARGEST or value != value.quantize(CENT):
        raise Refused(
            f"{what}: a number above 0 and at most {LARGEST:,} with at most two decimals, "
            f"not {text!r}"
        )
    return value


def whole(text: str, what: str) -> int:
    if not text.strip().isdigit() or len(text.strip()) > len(str(LARGEST)):
        raise Refused(f"{what}: a whole number up to {LARGEST:,}, not {text!r}")
    value = int(text)
    if value > LARGEST:
        raise Refused(f"{what}: a whole number up to {LARGEST:,}, not {text!r}")
    return value


def day(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise Refused(f"not a date YYYY-MM-DD: {text!r}") from None


def instant(text: str, zone: ZoneInfo) -> datetime:
    """An ISO 8601 date and time; without an offset, in `zone`."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise Refused(f"not a date and time YYYY-MM-DDTHH:MM: {text!r}") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value.astimezone(UTC)


def span(text: str, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """`START/END` (ISO 8601 intervals); END may be a time of day: on START's date, or on the
    next day if it is not later (a session over midnight)."""
    first, slash, second = text.strip().partition("/")
    if not slash:
        raise Refused(f"expected START/END, e.g. 2026-12-01T09:00/12:00, not {text!r}")
    start = instant(first, zone)
    if "T" in second or " " in second.strip():
        end = instant(second, zone)
    else:
        try:
            at = time.fromisoformat(second.strip())
        except ValueError:
            raise Refused(f"not a time of day HH:MM: {second!r}") from None
        local = start.astimezone(zone)
        end = datetime.combine(local.date(), at.replace(tzinfo=None), at.tzinfo or zone)
        if end <= start:
            end = datetime.combine(local.date() + ONE_DAY, end.timetz())
        end = end.astimezone(UTC)
    if end <= start:
        raise Refused(f"the end must come after the start: {text!r}")
    return start, end


def leading_id(argument: str) -> tuple[int | None, str]:
    """A session number first (`#cancel 12 beyond-control`), if any, and the rest."""
    first, _, rest = argument.strip().partition(" ")
    if first.isdigit():
        return whole(first, "session"), rest.strip()
    return None, argument.strip()
