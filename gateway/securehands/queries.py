"""The statements of SecureHands: lots and ledger lines, the Deadlines, and the customer they
belong to (SOWs, sessions and scans: records.py). Typed values in and out."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, insert, select, update

from gateway.core.hours import Calendar
from gateway.directory.queries import Person
from gateway.securehands.balance import Entry, Lot
from gateway.storage.tables import (
    CONTACTS,
    CUSTOMERS,
    DEADLINES,
    DELIVERIES,
    REQUESTS,
    UNIT_LEDGER,
    UNIT_LOTS,
)


@dataclass(frozen=True)
class CustomerRow:
    id: int
    name: str
    calendar: Calendar  # Business Hours – Standard of its office (§1.3)

    def today(self, now: datetime) -> date:
        return now.astimezone(self.calendar.zone).date()


@dataclass(frozen=True)
class NewEntry:
    customer_id: int
    kind: str
    units: Decimal
    at: datetime
    by: str
    lot_id: int | None = None
    sow_id: int | None = None
    session_id: int | None = None
    from_reserve: Decimal = Decimal(0)
    note: str = ""


@dataclass(frozen=True)
class NewClock:
    """A SecureHands Deadline (the `deadlines` table the clock reads)."""

    kind: str
    started_at: datetime
    due_at: datetime
    created_at: datetime
    sr_id: int | None = None
    session_id: int | None = None
    lot_id: int | None = None
    warn_at: datetime | None = None

    def as_row(self) -> dict[str, Any]:
        return {**asdict(self), "next_at": self.warn_at or self.due_at}


_LOT = [UNIT_LOTS.c[name] for name in ("id", "units", "purchased_on", "expires_on", "reference")]
_ENTRY = [UNIT_LEDGER.c[f.name] for f in fields(Entry)]


# --- customers ---------------------------------------------------------------------------------


def customer(conn: Connection, customer_id: int) -> CustomerRow:
    row = conn.execute(select(CUSTOMERS).where(CUSTOMERS.c.id == customer_id)).one()
    return CustomerRow(row.id, row.name, Calendar(row.timezone, row.country, row.subdivision))


def customer_named(conn: Connection, name: str) -> CustomerRow | None:
    found = conn.scalar(select(CUSTOMERS.c.id).where(CUSTOMERS.c.name == name.strip()))
    return customer(conn, found) if found is not None else None


def lock_customer(conn: Connection, customer_id: int) -> None:
    """The ledger of a customer is written by one transaction at a time: a row lock on
    PostgreSQL (FOR NO KEY UPDATE, which new SRs of the customer do not wait for); SQLite has
    one writer anyway."""
    conn.execute(
        select(CUSTOMERS.c.id).where(CUSTOMERS.c.id == customer_id).with_for_update(key_share=True)
    )


def contacts_of(conn: Connection, customer_id: int) -> list[Person]:
    rows = conn.execute(
        select(CONTACTS.c.email, CONTACTS.c.name)
        .where(CONTACTS.c.customer_id == customer_id, CONTACTS.c.removed_at.is_(None))
        .order_by(CONTACTS.c.email)
    )
    return [Person(row.email, row.name) for row in rows]


def request_id(conn: Connection, public_id: str) -> int | None:
    return conn.scalar(
        select(REQUESTS.c.id).where(REQUESTS.c.public_id == public_id.strip().upper())
    )


def message_id_of(conn: Connection, delivery_id: int) -> str:
    return str(conn.scalar(select(DELIVERIES.c.message_id).where(DELIVERIES.c.id == delivery_id)))


# --- lots and the ledger -----------------------------------------------------------------------


def add_lot(conn: Connection, customer_id: int, lot: Lot, now: datetime) -> int:
    values = {**asdict(lot), "customer_id": customer_id, "created_at": now}
    del values["id"]
    return int(conn.execute(insert(UNIT_LOTS).returning(UNIT_LOTS.c.id), values).scalar_one())


def lots(conn: Connection, customer_id: int) -> list[Lot]:
    rows = conn.execute(
        select(*_LOT).where(UNIT_LOTS.c.customer_id == customer_id).order_by(UNIT_LOTS.c.id)
    )
    return [Lot(*row) for row in rows]


def lot(conn: Connection, lot_id: int) -> tuple[int, Lot]:
    """A lot and the customer it belongs to."""
    row = conn.execute(select(UNIT_LOTS.c.customer_id, *_LOT).where(UNIT_LOTS.c.id == lot_id)).one()
    return row[0], Lot(*row[1:])


def add_entry(conn: Connection, entry: NewEntry) -> None:
    conn.execute(insert(UNIT_LEDGER), asdict(entry))


def entries(conn: Connection, customer_id: int) -> list[Entry]:
    rows = conn.execute(
        select(*_ENTRY).where(UNIT_LEDGER.c.customer_id == customer_id).order_by(UNIT_LEDGER.c.id)
    )
    return [Entry(*row) for row in rows]


def ledger_lines(conn: Connection, customer_id: int) -> list[Any]:
    """Every line with its time, author and note, for `gateway units ledger`."""
    return list(
        conn.execute(
            select(UNIT_LEDGER, UNIT_LOTS.c.reference)
            .outerjoin(UNIT_LOTS, UNIT_LOTS.c.id == UNIT_LEDGER.c.lot_id)
            .where(UNIT_LEDGER.c.customer_id == customer_id)
            .order_by(UNIT_LEDGER.c.id)
        )
    )


# --- Deadlines ----------------------------------------------------------------------------------


def add_clock(conn: Connection, clock: NewClock) -> None:
    conn.execute(insert(DEADLINES), clock.as_row())


def subject_of(conn: Connection, deadline_id: int) -> tuple[int | None, int | None]:
    """The session and the lot a Deadline is about."""
    row = conn.execute(
        select(DEADLINES.c.session_id, DEADLINES.c.lot_id).where(DEADLINES.c.id == deadline_id)
    ).one()
    return row.session_id, row.lot_id


def finish_clock(conn: Connection, deadline_id: int, now: datetime) -> None:
    conn.execute(
        update(DEADLINES).where(DEADLINES.c.id == deadline_id).values(met_at=now, next_at=None)
    )


def warned_clock(conn: Connection, deadline_id: int, now: datetime, due: datetime) -> None:
    conn.execute(
        update(DEADLINES).where(DEADLINES.c.id == deadline_id).values(warned_at=now, next_at=due)
    )


def stop_clocks(
    conn: Connection,
    kinds: tuple[str, ...],
    now: datetime,
    *,
    session_id: int | None = None,
    sr_id: int | None = None,
) -> int:
    """The running clocks of a session (or of an SR) of these kinds end: met now."""
    query = update(DEADLINES).where(DEADLINES.c.kind.in_(kinds), DEADLINES.c.met_at.is_(None))
    if session_id is not None:
        query = query.where(DEADLINES.c.session_id == session_id)
    if sr_id is not None:
        query = query.where(DEADLINES.c.sr_id == sr_id)
    return int(conn.execute(query.values(met_at=now, next_at=None)).rowcount)
