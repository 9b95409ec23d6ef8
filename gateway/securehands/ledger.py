"""§3.11.2, §3.11.3, §3.11.7: the unit ledger of a customer, append-only.

Each use-case takes the customer's row lock first (queries.lock_customer), reads the lines and
appends new ones in the same transaction: two sessions taken at the same moment, by two clocks or
two analysts, see each other's lines and never take the same units twice. A session's units are
taken when it is delivered (`pending`, from the SOW's reservation first, then from the lots
first to expire) and become final on acceptance (`debit`, the same units); a credit gives units
back to the lots they came from, last taken first.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from gateway.securehands import clocks
from gateway.securehands.acts import Act, Refused
from gateway.securehands.balance import (
    CREDIT,
    DEBIT,
    EXPIRE,
    PENDING,
    PURCHASE,
    RELEASE,
    RESERVE,
    ZERO,
    Balance,
    Lot,
    allocate,
    balance,
    creditable,
    give_back,
    remaining,
    reserved_for,
)
from gateway.securehands.queries import (
    CustomerRow,
    NewEntry,
    add_entry,
    add_lot,
    entries,
    lock_customer,
    lots,
)
from gateway.securehands.units import expiry

Parts = list[tuple[int | None, Decimal]]  # (lot, units); None: beyond every lot


def figures(act: Act, customer: CustomerRow) -> Balance:
    """The customer's balance now (no lock: what a listing or a mail shows)."""
    today = customer.today(act.now)
    return balance(lots(act.conn, customer.id), entries(act.conn, customer.id), today)


def purchase(
    act: Act, customer: CustomerRow, units: Decimal, purchased_on: date, reference: str
) -> int:
    """§3.11.2: a lot of units, valid 12 months from purchase; its reminders and expiry armed."""
    if units <= 0:
        raise Refused("a purchase is of more than 0 units")
    today = customer.today(act.now)
    if purchased_on > today:  # its units would stay valid beyond 12 months from now
        raise Refused(f"a purchase is dated today ({today}) or earlier, not {purchased_on}")
    lock_customer(act.conn, customer.id)
    lot = Lot(0, units, purchased_on, expiry(purchased_on), reference)
    lot_id = add_lot(act.conn, customer.id, lot, act.now)
    _add(act, customer, PURCHASE, units, lot_id=lot_id, note=reference)
    clocks.arm_lot(act.conn, customer, lot_id, lot.expires_on, act.now)
    return lot_id


def reserve(act: Act, customer: CustomerRow, sow_id: int, units: Decimal) -> Decimal:
    """§3.11.2: a SOW agreed holds its planned units; returns the shortfall (0: none)."""
    lock_customer(act.conn, customer.id)
    before = figures(act, customer).available
    _add(act, customer, RESERVE, units, sow_id=sow_id)
    return max(ZERO, units - max(before, ZERO))


def release(
    act: Act, customer: CustomerRow, sow_id: int, units: Decimal | None = None, note: str = ""
) -> Decimal:
    """What a SOW's reservation still holds (or `units` of it) goes back; returns how much."""
    lock_customer(act.conn, customer.id)
    held = reserved_for(entries(act.conn, customer.id), sow_id)
    amount = held if units is None else min(units, held)
    if amount > 0:
        _add(act, customer, RELEASE, amount, sow_id=sow_id, note=note)
    return max(amount, ZERO)


def take(
    act: Act, customer: CustomerRow, kind: str, units: Decimal, sow_id: int, session_id: int
) -> Parts:
    """A session's units taken (`pending` when delivered, `forfeit` when forfeited): out of its
    SOW's reservation first, from the lots first to expire."""
    lock_customer(act.conn, customer.id)
    lines = entries(act.conn, customer.id)
    held = max(ZERO, reserved_for(lines, sow_id))
    reserved_part = min(units, held)
    parts = allocate(balance(lots(act.conn, customer.id), lines, customer.today(act.now)), units)
    for lot_id, part in parts:
        share = min(part, reserved_part)
        reserved_part -= share
        _add(
            act,
            customer,
            kind,
            part,
            lot_id=lot_id,
            sow_id=sow_id,
            session_id=session_id,
            from_reserve=share,
        )
    return parts


def settle(act: Act, customer: CustomerRow, session_id: int) -> Decimal:
    """§3.11.6: accepted: the session's pending units become a debit, the same units."""
    lock_customer(act.conn, customer.id)
    debited = ZERO
    for line in entries(act.conn, customer.id):
        if line.session_id == session_id and line.kind == PENDING:
            _add(act, customer, DEBIT, line.units, lot_id=line.lot_id, session_id=session_id)
            debited += line.units
    return debited


def credit(act: Act, customer: CustomerRow, session_id: int, units: Decimal, note: str) -> Parts:
    """§3.11.7: SOC management cancels all or part of a session's debit: the units go back to
    the lots they came from; what lands on a lot no longer valid expires with it at once."""
    lock_customer(act.conn, customer.id)
    lines = entries(act.conn, customer.id)
    sources = creditable(lines, session_id)
    if units > sum((held for _, held in sources), ZERO):
        raise Refused(f"the session has only {sum((h for _, h in sources), ZERO)} units to credit")
    today = customer.today(act.now)
    valid = {lot.id: lot.valid_on(today) for lot in lots(act.conn, customer.id)}
    parts = give_back(sources, units)
    for lot_id, part in parts:
        _add(act, customer, CREDIT, part, lot_id=lot_id, session_id=session_id, note=note)
        if lot_id is not None and not valid[lot_id]:
            _add(act, customer, EXPIRE, part, lot_id=lot_id, note="credited after its expiry")
    return parts


def expire(act: Act, customer: CustomerRow, lot_id: int) -> Decimal:
    """§3.11.2: the lot's validity ended: what is left of it expires."""
    lock_customer(act.conn, customer.id)
    left = remaining(lots(act.conn, customer.id), entries(act.conn, customer.id))[lot_id]
    if left > 0:
        _add(act, customer, EXPIRE, left, lot_id=lot_id)
    return max(left, ZERO)


def _add(
    act: Act,
    customer: CustomerRow,
    kind: str,
    units: Decimal,
    *,
    lot_id: int | None = None,
    sow_id: int | None = None,
    session_id: int | None = None,
    from_reserve: Decimal = ZERO,
    note: str = "",
) -> None:
    line = NewEntry(
        customer.id, kind, units, act.now, act.by, lot_id, sow_id, session_id, from_reserve, note
    )
    add_entry(act.conn, line)
