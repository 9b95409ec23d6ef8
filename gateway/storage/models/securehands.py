"""SecureHands (§3.11–§3.13): lots of units, the append-only unit ledger, SOWs, sessions, scans.

Units are kept as hundredths in integer columns (`Units`): a rate of 1.5 units an hour outside
Business Hours – Standard makes halves, and no database here rounds an integer.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Index, Integer, String, Text, TypeDecorator
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, mapped_column

from gateway.storage.models.base import Base, Id

CENT = Decimal("0.01")


class Units(TypeDecorator[Decimal]):
    """A number of units (or units per hour) as exact hundredths: Decimal in, Decimal out."""

    impl = Integer
    cache_ok = True

    def process_bind_param(self, value: Decimal | int | None, dialect: Dialect) -> int | None:
        if value is None:
            return None
        hundredths = Decimal(value) * 100
        if hundredths != hundredths.to_integral_value():
            raise ValueError(f"units have at most two decimals, not {value}")
        return int(hundredths)

    def process_result_value(self, value: int | None, dialect: Dialect) -> Decimal | None:
        return None if value is None else (Decimal(value) / 100).quantize(CENT)


class UnitLot(Base):
    """§3.11.2: units bought in advance, valid 12 months from purchase (`expires_on`: the first
    day they are no longer valid, in the customer's office zone)."""

    __tablename__ = "unit_lots"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    units: Mapped[Decimal] = mapped_column(Units())
    purchased_on: Mapped[date] = mapped_column(Date)
    expires_on: Mapped[date] = mapped_column(Date)
    reference: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime]


class UnitEntry(Base):
    """One line of the ledger: purchase, reserve, release, pending, debit, forfeit, expire, credit.

    Never updated or deleted: balances are sums over these lines. `from_reserve` is the part of a
    pending or forfeit line that its SOW's reservation held (so the reservation shrinks by it).
    """

    __tablename__ = "unit_ledger"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    kind: Mapped[str] = mapped_column(String(16))
    units: Mapped[Decimal] = mapped_column(Units())
    from_reserve: Mapped[Decimal] = mapped_column(Units(), default=Decimal(0))
    lot_id: Mapped[int | None] = mapped_column(ForeignKey("unit_lots.id"))  # None: beyond any lot
    sow_id: Mapped[int | None] = mapped_column(ForeignKey("securehands_sows.id"))
    session_id: Mapped[int | None] = mapped_column(ForeignKey("securehands_sessions.id"))
    at: Mapped[datetime]
    by: Mapped[str] = mapped_column(String(320), default="")
    note: Mapped[str] = mapped_column(Text, default="")
    __table_args__ = (Index("ix_unit_ledger_customer", "customer_id", "id"),)


class SecureHandsSow(Base):
    """§3.11: a Statement of Work agreed on an SR: its planned units, optionally a fixed number of
    units per session, and the units per hour outside Business Hours – Standard."""

    __tablename__ = "securehands_sows"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    sr_id: Mapped[int] = mapped_column(ForeignKey("service_requests.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    state: Mapped[str] = mapped_column(String(16))  # agreed | finished
    planned_units: Mapped[Decimal] = mapped_column(Units())
    fixed_units: Mapped[Decimal | None] = mapped_column(Units())
    out_of_hours_rate: Mapped[Decimal] = mapped_column(Units())
    shortfall: Mapped[Decimal] = mapped_column(Units(), default=Decimal(0))
    report_files: Mapped[list[int]] = mapped_column(JSON, default=list)  # §3.12: the TBA report
    agreed_at: Mapped[datetime]
    agreed_by: Mapped[str] = mapped_column(String(320))
    finished_at: Mapped[datetime | None]


class SecureHandsSession(Base):
    """§3.11.3–§3.11.7: one session of a SOW, from its request to its acceptance."""

    __tablename__ = "securehands_sessions"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    sow_id: Mapped[int] = mapped_column(ForeignKey("securehands_sows.id"), index=True)
    sr_id: Mapped[int] = mapped_column(ForeignKey("service_requests.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    # requested | scheduled | delivered | queried | accepted | cancelled | forfeited
    state: Mapped[str] = mapped_column(String(16))
    requested_at: Mapped[datetime]
    planned_start: Mapped[datetime | None]
    planned_end: Mapped[datetime | None]
    actual_start: Mapped[datetime | None]
    actual_end: Mapped[datetime | None]
    units: Mapped[Decimal | None] = mapped_column(Units())  # consumed, or forfeited
    counting: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # how they were counted
    statement_message_id: Mapped[str | None] = mapped_column(String(998))
    statement_at: Mapped[datetime | None]
    accept_at: Mapped[datetime | None]
    queried_at: Mapped[datetime | None]
    query_text: Mapped[str] = mapped_column(Text, default="")
    feedback: Mapped[str] = mapped_column(Text, default="")
    decided_at: Mapped[datetime | None]  # accepted, or the query decided
    decision: Mapped[str] = mapped_column(String(16), default="")  # accepted|credit|confirm|lapsed
    credited: Mapped[Decimal] = mapped_column(Units(), default=Decimal(0))
    note: Mapped[str] = mapped_column(Text, default="")  # why it was cancelled or credited
    updated_by: Mapped[str] = mapped_column(String(320), default="")


class ScanEngagement(Base):
    """§3.13: a Security Assessment Scan engagement: two scans of at most 25 IPs (unless agreed),
    credits valid 12 months from the order, the remediation scan tied to the report review."""

    __tablename__ = "scan_engagements"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    sr_id: Mapped[int] = mapped_column(ForeignKey("service_requests.id"), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    ordered_on: Mapped[date] = mapped_column(Date)
    expires_on: Mapped[date] = mapped_column(Date)
    ips: Mapped[int] = mapped_column(Integer)
    max_ips: Mapped[int] = mapped_column(Integer)
    scan: Mapped[int] = mapped_column(Integer, default=1)  # the scan being prepared: 1 or 2
    scan_start: Mapped[datetime | None]
    scan_end: Mapped[datetime | None]
    reports: Mapped[list[int]] = mapped_column(JSON, default=list)  # attachment ids sent
    report_at: Mapped[datetime | None]
    reviewed_on: Mapped[date | None]
    remediation_requested_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
