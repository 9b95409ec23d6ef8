"""The stored SOWs, sessions and scan engagements of SecureHands: their rows and statements.
Typed values in and out (storage/models/securehands.py)."""

from __future__ import annotations

from dataclasses import asdict, astuple, dataclass, field, fields
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Table, insert, select, update

from gateway.storage.tables import SCANS, SESSIONS, SOWS


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
    state: str  # requested | scheduled | delivered | queried | accepted | cancelled | forfeited
    requested_at: datetime
    updated_by: str
    planned_start: datetime | None = None
    planned_end: datetime | None = None
    actual_start: datetime | None = None
    actual_end: datetime | None = None
    units: Decimal | None = None
    counting: dict[str, Any] = field(default_factory=dict)
    statement_message_id: str | None = None
    statement_at: datetime | None = None
    accept_at: datetime | None = None
    queried_at: datetime | None = None
    query_text: str = ""
    feedback: str = ""
    decided_at: datetime | None = None
    decision: str = ""
    credited: Decimal = Decimal(0)
    note: str = ""


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


def _columns(table: Table, row: type) -> list[Any]:
    return [table.c[f.name] for f in fields(row)]


_SOW, _SESSION, _SCAN = (
    _columns(SOWS, SowRow),
    _columns(SESSIONS, SessionRow),
    _columns(SCANS, ScanRow),
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
