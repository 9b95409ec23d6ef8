"""§3.11.2: a customer's units, derived from the ledger's lines and never stored as a number.

    available = purchased − reserved − pending − debited − forfeited − expired + credited

A lot's units are taken first-to-expire, first-used; what no lot covers is `beyond` (an
overdraft the customer tops up). A lot whose validity ended shows as expired at once, even before
the clock has written its `expire` line. Pure: the lines in, the figures out.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

ZERO = Decimal(0)
PURCHASE, RESERVE, RELEASE = "purchase", "reserve", "release"
PENDING, DEBIT, FORFEIT, EXPIRE, CREDIT = "pending", "debit", "forfeit", "expire", "credit"
KINDS = (PURCHASE, RESERVE, RELEASE, PENDING, DEBIT, FORFEIT, EXPIRE, CREDIT)
TAKEN = {PENDING: 1, FORFEIT: 1, EXPIRE: 1, CREDIT: -1}  # what leaves a lot (a credit returns)


@dataclass(frozen=True)
class Lot:
    """Units bought together (§3.11.2): valid from purchase until `expires_on` (excluded)."""

    id: int
    units: Decimal
    purchased_on: date
    expires_on: date
    reference: str

    def valid_on(self, day: date) -> bool:
        return day < self.expires_on


@dataclass(frozen=True)
class Entry:
    """A line of the ledger (storage/models/securehands.py `UnitEntry`)."""

    id: int
    kind: str
    units: Decimal
    from_reserve: Decimal
    lot_id: int | None
    sow_id: int | None
    session_id: int | None


@dataclass(frozen=True)
class LotBalance:
    lot: Lot
    left: Decimal  # not yet taken (0 once expired)
    valid: bool


@dataclass(frozen=True)
class Balance:
    lots: tuple[LotBalance, ...]  # first to expire first
    beyond: Decimal  # taken beyond every lot: to be covered by a purchase
    purchased: Decimal
    reserved: Decimal
    pending: Decimal
    debited: Decimal
    forfeited: Decimal
    expired: Decimal  # with what lapsed lots still hold, before their `expire` line
    credited: Decimal

    @property
    def available(self) -> Decimal:
        return (
            self.purchased
            - self.reserved
            - self.pending
            - self.debited
            - self.forfeited
            - self.expired
            + self.credited
        )

    @property
    def shortfall(self) -> Decimal:
        return max(ZERO, -self.available)


def remaining(lots: Sequence[Lot], entries: Iterable[Entry]) -> dict[int | None, Decimal]:
    """Units left in each lot (None: taken beyond every lot, as a negative number)."""
    left: dict[int | None, Decimal] = {lot.id: lot.units for lot in lots}
    left.setdefault(None, ZERO)
    for entry in entries:
        sign = TAKEN.get(entry.kind)
        if sign is not None:
            left[entry.lot_id] = left.get(entry.lot_id, ZERO) - sign * entry.units
    return left


def balance(lots: Sequence[Lot], entries: Sequence[Entry], today: date) -> Balance:
    """The figures on `today` (the customer's office date)."""
    totals: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for entry in entries:
        totals[entry.kind] += entry.units
    left = remaining(lots, entries)
    shown, lapsed = [], ZERO
    for lot in sorted(lots, key=lambda lot: (lot.expires_on, lot.id)):
        valid = lot.valid_on(today)
        if not valid:
            lapsed += max(ZERO, left[lot.id])
        shown.append(LotBalance(lot, left[lot.id] if valid else ZERO, valid))
    reserved = totals[RESERVE] - totals[RELEASE] - sum((e.from_reserve for e in entries), ZERO)
    return Balance(
        lots=tuple(shown),
        beyond=-left[None],
        purchased=totals[PURCHASE],
        reserved=reserved,
        pending=totals[PENDING] - totals[DEBIT],
        debited=totals[DEBIT],
        forfeited=totals[FORFEIT],
        expired=totals[EXPIRE] + lapsed,
        credited=totals[CREDIT],
    )


def reserved_for(entries: Iterable[Entry], sow_id: int) -> Decimal:
    """What a SOW's reservation still holds."""
    held = ZERO
    for entry in entries:
        if entry.sow_id == sow_id:
            if entry.kind == RESERVE:
                held += entry.units
            elif entry.kind == RELEASE:
                held -= entry.units
            held -= entry.from_reserve
    return held


def allocate(current: Balance, units: Decimal) -> list[tuple[int | None, Decimal]]:
    """Where `units` are taken from: valid lots, first to expire first; the rest beyond them."""
    taken: list[tuple[int | None, Decimal]] = []
    need = units
    for lot in current.lots:
        if need <= 0:
            break
        if lot.valid and lot.left > 0:
            part = min(need, lot.left)
            taken.append((lot.lot.id, part))
            need -= part
    if need > 0:
        taken.append((None, need))
    return taken


def creditable(entries: Iterable[Entry], session_id: int) -> list[tuple[int | None, Decimal]]:
    """Where a delivered session's units came from, that a credit (§3.11.7) may give back: last
    taken first. Forfeits are final (§3.11.3) and are never credited."""
    held: dict[int | None, Decimal] = {}
    for entry in entries:
        if entry.session_id != session_id:
            continue
        if entry.kind == PENDING:
            held[entry.lot_id] = held.get(entry.lot_id, ZERO) + entry.units
        elif entry.kind == CREDIT:
            held[entry.lot_id] = held.get(entry.lot_id, ZERO) - entry.units
    return [(lot, units) for lot, units in reversed(held.items()) if units > 0]


def give_back(
    sources: list[tuple[int | None, Decimal]], units: Decimal
) -> list[tuple[int | None, Decimal]]:
    """`units` spread over `sources` (from `creditable`), in their order."""
    given, need = [], units
    for lot, held in sources:
        if need <= 0:
            break
        part = min(need, held)
        given.append((lot, part))
        need -= part
    return given


def free_in(current: Balance, lot_id: int) -> Decimal:
    """What of a lot no agreed SOW covers: reservations (and overdraft) held by the first lots to
    expire, as they would be used (§3.11: units not yet covered by an agreed SOW)."""
    need = current.reserved + current.beyond
    for lot in current.lots:
        if not lot.valid:
            continue
        held = min(max(need, ZERO), lot.left)
        need -= held
        if lot.lot.id == lot_id:
            return lot.left - held
    return ZERO
