"""The statements of the units report (§3.11.2): the lots and the unit ledger's lines of the
customers that have SecureHands units, as stored at `as_of`.

The reports room reads these tables itself: the rooms' contract in pyproject.toml makes
`reports` and `securehands` independent layers (neither imports the other), and both may read
`gateway.storage`. So the report sums the same append-only lines `securehands/balance.py` sums,
never a figure kept on the side.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Connection, select, union

from gateway.reports.queries import CustomerRef
from gateway.storage.tables import CUSTOMERS, UNIT_LEDGER, UNIT_LOTS


@dataclass(frozen=True)
class LotRow:
    """A lot of units (§3.11.2): valid from `purchased_on` until `expires_on`, excluded, in
    the customer's office zone."""

    id: int
    customer_id: int
    units: Decimal
    purchased_on: date
    expires_on: date
    reference: str


@dataclass(frozen=True)
class LineRow:
    """A line of the ledger (storage/models/securehands.py `UnitEntry`)."""

    customer_id: int
    kind: str
    units: Decimal
    from_reserve: Decimal  # the part of a pending or forfeit line its SOW's reservation held
    lot_id: int | None  # None: beyond every lot
    at: datetime


def customers_with_units(
    conn: Connection, as_of: datetime, customer_id: int | None
) -> list[CustomerRef]:
    """The customers (or the one asked for) with a lot or a ledger line recorded by `as_of`,
    by name: who has SecureHands units, or had them."""
    c, lot, line = CUSTOMERS.c, UNIT_LOTS.c, UNIT_LEDGER.c
    with_lots = select(lot.customer_id).where(lot.created_at <= as_of)
    with_lines = select(line.customer_id).where(line.at <= as_of)
    query = select(c.id, c.name, c.timezone).order_by(c.name)
    if customer_id is not None:
        with_lots = with_lots.where(lot.customer_id == customer_id)
        with_lines = with_lines.where(line.customer_id == customer_id)
        query = query.where(c.id == customer_id)
    owners = union(with_lots, with_lines).subquery()
    query = query.where(c.id.in_(select(owners.c.customer_id)))
    return [CustomerRef(*row) for row in conn.execute(query)]


def lots(conn: Connection, as_of: datetime, customer_id: int | None) -> list[LotRow]:
    """The lots recorded by `as_of`, in the order they were recorded."""
    u = UNIT_LOTS.c
    query = (
        select(u.id, u.customer_id, u.units, u.purchased_on, u.expires_on, u.reference)
        .where(u.created_at <= as_of)
        .order_by(u.customer_id, u.id)
    )
    if customer_id is not None:
        query = query.where(u.customer_id == customer_id)
    return [LotRow(*row) for row in conn.execute(query)]


def lines(conn: Connection, as_of: datetime, customer_id: int | None) -> list[LineRow]:
    """Every line written by `as_of`, per customer in the order written (the index
    ix_unit_ledger_customer is that order)."""
    u = UNIT_LEDGER.c
    query = (
        select(u.customer_id, u.kind, u.units, u.from_reserve, u.lot_id, u.at)
        .where(u.at <= as_of)
        .order_by(u.customer_id, u.id)
    )
    if customer_id is not None:
        query = query.where(u.customer_id == customer_id)
    return [LineRow(*row) for row in conn.execute(query)]
