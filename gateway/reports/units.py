"""SecureHands units (§3.11.2, §3.11.3, §3.11.7), per customer and month of a period: the units
purchased, reserved by agreed SOWs and released, consumed by sessions delivered and accepted,
forfeited, expired and credited, the reservations and the available units at each month's end;
and the lots that expire in the 90 days after `as_of` with units left.

Summed from the stored unit ledger (gateway/reports/ledger.py) as it stood at `as_of`, by the
rules of `securehands/balance.py`. Months and days are the customer's office zone's, where a
lot's validity is counted (a lot expires at 00:00 of its expiry day there): a lot bought on
2025-11-01 by a Berlin office expires at 00:00 CET on 2026-11-01, in November, although the
SOC's clock in London still shows 31 October.

- A purchase counts on its purchase date (00:00 in the office's zone), or when it was recorded
  if that is earlier: a lot bought in October and entered in November is October's.
- `consumed`: the units of the sessions delivered (taken at once, §3.11.6); `accepted`: those
  that became final; a credit gives units back and is `credited`, never taken off `consumed`.
- `expired`: the expire lines, and what a lot past its validity still holds before the clock
  has written its line (so the month-end figures equal the balance the customer is shown).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from gateway.core.hours import iso
from gateway.reports.ledger import ZERO, Ledger, Snapshot, month_starts
from gateway.reports.periods import Period
from gateway.reports.queries import CustomerRef
from gateway.reports.queries import units as statements
from gateway.reports.queries.units import LineRow, LotRow

EXPIRING_DAYS = 90  # §3.11: the first of the reminders of units no agreed SOW covers
KNOWN = timedelta(microseconds=1)  # what was written at `as_of` itself is known at `as_of`
# the movements of a month: (field, ledger kind)
MOVEMENTS = (
    ("purchased", "purchase"),
    ("reserved", "reserve"),
    ("released", "release"),
    ("consumed", "pending"),
    ("accepted", "debit"),
    ("forfeited", "forfeit"),
    ("expired", "expire"),
    ("credited", "credit"),
)


@dataclass(frozen=True)
class Movements:
    """A month's movements (or the period's: `month` None) and the balance around them."""

    month: str | None  # YYYY-MM in the customer's office zone
    purchased: Decimal
    reserved: Decimal
    released: Decimal
    consumed: Decimal
    accepted: Decimal
    forfeited: Decimal
    expired: Decimal
    credited: Decimal
    available_at_start: Decimal
    reserved_at_end: Decimal  # still held by agreed SOWs
    available_at_end: Decimal  # at the month's end, or at `as_of` if that is sooner


@dataclass(frozen=True)
class ExpiringLot:
    reference: str
    purchased_on: date
    expires_on: date  # the first day no longer valid
    last_valid_day: date
    days_left: int  # from `as_of`'s day in the office zone to `expires_on`: 1 … 90
    units: Decimal  # bought
    left: Decimal  # not yet taken
    uncovered: Decimal  # of them, what no agreed SOW's reservation covers (§3.11)


@dataclass(frozen=True)
class CustomerUnits:
    customer: str
    timezone: str
    months: list[Movements]
    total: Movements
    expiring: list[ExpiringLot]


LOT_COLUMNS = tuple(f.name for f in fields(ExpiringLot))


@dataclass(frozen=True)
class UnitsReport:
    customer: str | None
    period: Period  # its days; each customer's are counted in its office zone
    as_of: datetime
    customers: list[CustomerUnits]
    expiring_days: int = EXPIRING_DAYS
    columns: ClassVar[tuple[str, ...]] = (
        "scope",
        "customer",
        "timezone",
        *(f.name for f in fields(Movements)),
        *LOT_COLUMNS,
    )

    def as_json(self) -> dict[str, Any]:
        return {
            "report": "units",
            "customer": self.customer,
            "from": self.period.first.isoformat(),
            "to": self.period.last.isoformat(),
            "as_of": iso(self.as_of),
            "expiring_within_days": self.expiring_days,
            "customers": [plain(c) for c in self.customers],
        }

    def rows(self) -> list[dict[str, Any]]:
        """The same figures as one table (CSV): per customer its months, its total, its lots."""
        table: list[dict[str, Any]] = []
        for c in self.customers:
            who = {"customer": c.customer, "timezone": c.timezone}
            table += [{"scope": "month", **who, **plain(m)} for m in c.months]
            table.append({"scope": "total", **who, **plain(c.total)})
            table += [{"scope": "lot", **who, **plain(lot)} for lot in c.expiring]
        return table


def units_report(
    conn: Connection,
    period: Period,
    as_of: datetime,
    customer: str | None = None,
    customer_id: int | None = None,
) -> UnitsReport:
    """Every customer with units (or the one named), by name."""
    lots: dict[int, list[LotRow]] = defaultdict(list)
    for lot in statements.lots(conn, as_of, customer_id):
        lots[lot.customer_id].append(lot)
    lines: dict[int, list[LineRow]] = defaultdict(list)
    for line in statements.lines(conn, as_of, customer_id):
        lines[line.customer_id].append(line)
    found = [
        customer_units(ref, period, as_of, lots[ref.id], lines[ref.id])
        for ref in statements.customers_with_units(conn, as_of, customer_id)
    ]
    return UnitsReport(customer, period, as_of, found)


def customer_units(
    ref: CustomerRef,
    days: Period,
    as_of: datetime,
    lots: list[LotRow],
    lines: list[LineRow],
) -> CustomerUnits:
    period = Period(days.first, days.last, ref.timezone)
    known = as_of + KNOWN
    cuts = [min(at, known) for at in month_starts(period)]
    ledger = Ledger(lots, lines, ZoneInfo(ref.timezone))
    snapshots: list[Snapshot] = []
    moved: list[dict[str, Decimal]] = []
    for cut in cuts:
        kinds = ledger.until(cut)
        if snapshots:
            moved.append(kinds)
        snapshots.append(ledger.snapshot(cut))
    ledger.until(known)  # the lots' figures at `as_of`, after the period too
    months = [
        _movements(month, moved[k], snapshots[k], snapshots[k + 1])
        for k, month in enumerate(period.months())
    ]
    total = _movements(None, _sum(moved), snapshots[0], snapshots[-1])
    today = as_of.astimezone(ZoneInfo(ref.timezone)).date()
    return CustomerUnits(ref.name, ref.timezone, months, total, expiring(ledger, today))


def _movements(
    month: str | None, kinds: dict[str, Decimal], start: Snapshot, end: Snapshot
) -> Movements:
    figures = {name: kinds.get(kind, ZERO) for name, kind in MOVEMENTS}
    figures["expired"] += end.lapsed - start.lapsed  # lapsed lots not yet written off
    return Movements(
        month=month,
        **figures,
        available_at_start=start.available,
        reserved_at_end=end.reserved,
        available_at_end=end.available,
    )


def _sum(months: list[dict[str, Decimal]]) -> dict[str, Decimal]:
    total: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for kinds in months:
        for kind, units in kinds.items():
            total[kind] += units
    return total


def expiring(ledger: Ledger, today: date, within: int = EXPIRING_DAYS) -> list[ExpiringLot]:
    """The valid lots with units left that expire within `within` days after `today`, first to
    expire first; what of each no agreed SOW covers, reservations held by the first lots to
    expire as they would be used (securehands/balance.py `free_in`)."""
    need = ledger.reserved + ledger.beyond
    found = []
    for lot in ledger.valid_lots(today):
        left = ledger.left.get(lot.id, ZERO)
        held = min(max(need, ZERO), left)
        need -= held
        days_left = (lot.expires_on - today).days
        if left > 0 and days_left <= within:
            found.append(
                ExpiringLot(
                    reference=lot.reference,
                    purchased_on=lot.purchased_on,
                    expires_on=lot.expires_on,
                    last_valid_day=lot.expires_on - timedelta(days=1),
                    days_left=days_left,
                    units=lot.units,
                    left=left,
                    uncovered=left - held,
                )
            )
    return found


def shown(units: Decimal) -> str:
    """Units as mails and listings state them (securehands/units.py `shown`): 5, 4.5, 2.25."""
    text = f"{units:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def plain(value: Any) -> Any:
    """A report's dataclass as JSON values: units as numbers (5, 4.5), days as YYYY-MM-DD."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list):
        return [plain(item) for item in value]
    if hasattr(value, "__dataclass_fields__"):
        return {f.name: plain(getattr(value, f.name)) for f in fields(value)}
    return value
