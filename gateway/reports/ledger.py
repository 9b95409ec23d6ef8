"""The unit ledger of one customer replayed in time, for the units report: its lines in the
order they took effect, and the balance they leave at any instant.

The sums are those of `securehands/balance.py` (which the reports room may not import: the
rooms' contract keeps `reports` and `securehands` independent), over the same stored lines:

    available = purchased − reserved − pending − debited − forfeited − expired + credited

where the reservation shrinks by the part of a session's units it held (`from_reserve`), a
pending line's units stay taken when they become a debit, and a lot past its validity counts as
expired at once, with what it still holds, before the clock writes its `expire` line.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from zoneinfo import ZoneInfo

from gateway.reports.periods import Period
from gateway.reports.queries.units import LineRow, LotRow

ZERO = Decimal(0)
PURCHASE, RESERVE, RELEASE = "purchase", "reserve", "release"
PENDING, FORFEIT, EXPIRE, CREDIT = "pending", "forfeit", "expire", "credit"
TAKEN = {PENDING: 1, FORFEIT: 1, EXPIRE: 1, CREDIT: -1}  # what leaves a lot (a credit returns)
# how each line moves the available units (a debit does not: its units left when pending)
AVAILABLE = {PURCHASE: 1, RESERVE: -1, RELEASE: 1, PENDING: -1, FORFEIT: -1, EXPIRE: -1, CREDIT: 1}


@dataclass(frozen=True)
class Snapshot:
    """The balance just before an instant."""

    available: Decimal
    reserved: Decimal  # held by agreed SOWs
    lapsed: Decimal  # held by lots past their validity, their expire line not yet written


def month_starts(period: Period) -> list[datetime]:
    """The period's start, each later month's first instant in the period's zone, its end."""
    zone = ZoneInfo(period.timezone)
    starts = [period.start]
    for month in period.months()[1:]:
        first = date.fromisoformat(f"{month}-01")
        starts.append(datetime.combine(first, time(0), zone).astimezone(UTC))
    return [*starts, period.end]


class Ledger:
    """One customer's lines, applied in the order they took effect (`until`)."""

    def __init__(self, lots: Sequence[LotRow], lines: Sequence[LineRow], zone: ZoneInfo) -> None:
        self.lots = {lot.id: lot for lot in lots}
        self.zone = zone
        # a lot lapses at 00:00 of its expiry day in the office zone (securehands/clocks.py)
        self.lapses = {lot.id: self._midnight(lot.expires_on) for lot in lots}
        self.left: dict[int | None, Decimal] = defaultdict(lambda: ZERO)
        self.available = ZERO  # before lapses
        self.reserved = ZERO
        timed = [(self.effective(line), line) for line in lines]
        self.events = sorted(timed, key=lambda event: event[0])  # stable: as written within
        self.applied = 0

    def effective(self, line: LineRow) -> datetime:
        """When a line took effect: a purchase on its purchase date (if it was recorded later),
        every other line when it was written."""
        lot = self.lots.get(line.lot_id) if line.lot_id is not None else None
        if line.kind == PURCHASE and lot is not None:
            return min(line.at, self._midnight(lot.purchased_on))
        return line.at

    def until(self, cut: datetime) -> dict[str, Decimal]:
        """Apply the lines that took effect before `cut`; their units per kind."""
        moved: dict[str, Decimal] = defaultdict(lambda: ZERO)
        while self.applied < len(self.events):
            at, line = self.events[self.applied]
            if at >= cut:
                break
            self._apply(line)
            moved[line.kind] += line.units
            self.applied += 1
        return moved

    def snapshot(self, cut: datetime) -> Snapshot:
        lapsed = sum(
            (
                max(ZERO, self.left[lot_id])
                for lot_id, at in self.lapses.items()
                if at < cut and lot_id in self.left
            ),
            ZERO,
        )
        return Snapshot(self.available - lapsed, self.reserved, lapsed)

    @property
    def beyond(self) -> Decimal:
        """Units taken beyond every lot: to be covered by a purchase."""
        return -self.left[None]

    def valid_lots(self, today: date) -> list[LotRow]:
        """The lots valid on `today` (their purchase applied), first to expire first."""
        valid = [
            lot for lot in self.lots.values() if lot.id in self.left and today < lot.expires_on
        ]
        return sorted(valid, key=lambda lot: (lot.expires_on, lot.id))

    def _apply(self, line: LineRow) -> None:
        self.available += AVAILABLE.get(line.kind, 0) * line.units + line.from_reserve
        if line.kind == RESERVE:
            self.reserved += line.units
        elif line.kind == RELEASE:
            self.reserved -= line.units
        self.reserved -= line.from_reserve
        if line.kind == PURCHASE:
            self.left[line.lot_id] += line.units
        elif line.kind in TAKEN:
            self.left[line.lot_id] -= TAKEN[line.kind] * line.units

    def _midnight(self, day: date) -> datetime:
        return datetime.combine(day, time(0), self.zone).astimezone(UTC)
