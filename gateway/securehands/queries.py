"""The statements of SecureHands: lots and ledger lines, SOWs, sessions, scans, their Deadlines,
and the customer they belong to. Typed values in and out (storage/models/securehands.py)."""

from __future__ import annotations

from dataclasses import asdict, astuple, dataclass, fields
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Table, insert, select, update

from gateway.core.hours import Calendar
from gateway.directory.queries import Person
from gateway.securehands.balance import Entry, Lot
from gateway.storage.tables import (
    CONTACTS,
    CUSTOMERS,
    DEADLINES,
    DELIVERIES,
    REQUESTS,
    SCANS,
    SESSIONS,
    SOWS,
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
class SowRow:
    id: int
    sr_id: int
    customer_id: int
    state: str  # agreed | finished
    planned_units: Decimal
    fixed_units: Decimal | None
    out_of_hours_rate: Decimal
    shortfall: Decimal
    report_files: list[int]
    agreed_at: datetime
    agreed_by: str
    finished_at: datetime | None


@dataclass(frozen=True)
class SessionRow:
    id: int
    sow_id: int
    sr_id: int
    customer_id: int
    state: str
    requested_at: datetime
    planned_start: datetime | None
    planned_end: datetime | None
    actual_start: datetime | None
    actual_end: datetime | None
    units: Decimal | None
    counting: dict[str, Any]
    statement_message_id: str | None
    statement_at: datetime | None
    accept_at: datetime | None
    queried_at: datetime | None
    query_text: str
    feedback: str
    decided_at: datetime | None
    decision: str
    credited: Decimal
    note: str
    updated_by: str


@dataclass(frozen=True)
class ScanRow:
    id: int
    sr_id: int
    customer_id: int
    ordered_on: date
    expires_on: date
    ips: int
    max_ips: int
    scan: int
    scan_start: datetime | None
    scan_end: datetime | None
    reports: list[int]
    report_at: datetime | None
    reviewed_on: date | None
    remediation_requested_at: datetime | None
    created_at: datetime


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


def _columns(table: Table, row: type) -> list[Any]:
    return [table.c[f.name] for f in fields(row)]


_SOW, _SESSION, _SCAN = (
    _columns(SOWS, SowRow),
    _columns(SESSIONS, SessionRow),
    _columns(SCANS, ScanRow),
)
_LOT = [UNIT_LOTS.c[name] for name in ("id", "units", "purchased_on", "expires_on", "reference")]
_ENTRY = _columns(UNIT_LEDGER, Entry)


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


# --- SOWs, sessions and scans ------------------------------------------------------------------


def add_sow(conn: Connection, row: SowRow) -> int:
    values = asdict(row)
    del values["id"]
    return int(conn.execute(insert(SOWS).returning(SOWS.c.id), values).scalar_one())


def active_sow(conn: Connection, sr_id: int) -> SowRow | None:
    row = conn.execute(
        select(*_SOW).where(SOWS.c.sr_id == sr_id, SOWS.c.state == "agreed").order_by(SOWS.c.id)
    ).first()
    return SowRow(*row) if row else None


def sow(conn: Connection, sow_id: int) -> SowRow:
    return SowRow(*conn.execute(select(*_SOW).where(SOWS.c.id == sow_id)).one())


def save_sow(conn: Connection, row: SowRow) -> None:
    conn.execute(update(SOWS).where(SOWS.c.id == row.id).values(_values(row)))


def add_session(conn: Connection, row: SessionRow) -> int:
    values = asdict(row)
    del values["id"]
    return int(conn.execute(insert(SESSIONS).returning(SESSIONS.c.id), values).scalar_one())


def session(conn: Connection, session_id: int) -> SessionRow | None:
    row = conn.execute(select(*_SESSION).where(SESSIONS.c.id == session_id)).first()
    return SessionRow(*row) if row else None


def sessions(
    conn: Connection, *, sr_id: int | None = None, customer_id: int | None = None
) -> list[SessionRow]:
    query = select(*_SESSION).order_by(SESSIONS.c.id)
    if sr_id is not None:
        query = query.where(SESSIONS.c.sr_id == sr_id)
    if customer_id is not None:
        query = query.where(SESSIONS.c.customer_id == customer_id)
    return [SessionRow(*row) for row in conn.execute(query)]


def save_session(conn: Connection, row: SessionRow, expected: str) -> bool:
    """Write a session's new state if it is still in state `expected` (a second clock or a reply
    that came first leaves it as that one wrote it). Returns whether it was written."""
    done = conn.execute(
        update(SESSIONS)
        .where(SESSIONS.c.id == row.id, SESSIONS.c.state == expected)
        .values(_values(row))
    )
    return bool(done.rowcount)


def add_scan(conn: Connection, row: ScanRow) -> int:
    values = asdict(row)
    del values["id"]
    return int(conn.execute(insert(SCANS).returning(SCANS.c.id), values).scalar_one())


def scan_of(conn: Connection, sr_id: int) -> ScanRow | None:
    row = conn.execute(select(*_SCAN).where(SCANS.c.sr_id == sr_id)).first()
    return ScanRow(*row) if row else None


def scans(conn: Connection, customer_id: int | None = None) -> list[ScanRow]:
    query = select(*_SCAN).order_by(SCANS.c.id)
    if customer_id is not None:
        query = query.where(SCANS.c.customer_id == customer_id)
    return [ScanRow(*row) for row in conn.execute(query)]


def save_scan(conn: Connection, row: ScanRow) -> None:
    conn.execute(update(SCANS).where(SCANS.c.id == row.id).values(_values(row)))


def _values(row: SowRow | SessionRow | ScanRow) -> dict[str, Any]:
    values = dict(zip([f.name for f in fields(row)], astuple(row), strict=True))
    del values["id"]
    return values


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
