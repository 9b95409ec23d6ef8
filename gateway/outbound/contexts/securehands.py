"""The contexts of the SecureHands and scan mails (§3.11–§3.13): the session completion
statement, the query and its decision, forfeits, top-ups, expiring units, scan reminders.

SecureHands paperwork is in English only (R1.11, §3.11.1). Units are strings as mails show them
("4.5"); times are in the customer's office zone.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.outbound.contexts.base import Context


@dataclass(frozen=True, kw_only=True)
class LotLine:
    reference: str
    purchased_on: str
    valid_until: str  # the last day the lot's units may be used
    left: str


@dataclass(frozen=True, kw_only=True)
class UnitFigures(Context):
    """A customer's balance (securehands/balance.py): per lot, reserved, pending, available."""

    lots: list[LotLine]
    beyond: str  # units taken beyond every lot ("0": none)
    reserved: str
    pending: str
    available: str
    shortfall: str


@dataclass(frozen=True, kw_only=True)
class AboutSession(Context):
    sr_id: str
    title: str
    session: int
    day: str  # "Thursday 26 November 2026"
    start: str  # "15:00"
    end: str
    zone: str  # "CET"


@dataclass(frozen=True, kw_only=True)
class SessionStatement(AboutSession, UnitFigures):
    """§3.11.6: the time, the units and how they were counted, the balance, feedback, acceptance."""

    contact_name: str
    spent: str  # "3 h 20 min"
    hours: int
    inside: int
    outside: int
    rate: str
    fixed: str | None
    units: str
    accept_at: str
    soc_phone: str


@dataclass(frozen=True, kw_only=True)
class SessionQueried(AboutSession):
    """§3.11.7: a customer's query of a statement, to SOC management."""

    customer: str
    units: str
    contact: str
    text: str
    statement_at: str
    decide_by: str


@dataclass(frozen=True, kw_only=True)
class QueryDecided(AboutSession, UnitFigures):
    """§3.11.7: what SOC management decided, once, with the new balance."""

    contact_name: str
    decision: str  # credit | confirm | lapsed
    units: str  # as the statement counted them
    credited: str
    counted: str  # what the session now costs
    reason: str
    soc_phone: str


@dataclass(frozen=True, kw_only=True)
class QueryOverdue(AboutSession):
    """§3.11.7: a query not decided: warned before, and when the 5 working days have passed."""

    customer: str
    units: str
    queried_at: str
    decide_by: str
    lapsed: bool


@dataclass(frozen=True, kw_only=True)
class UnitsForfeited(AboutSession, UnitFigures):
    """§3.11.3: a late cancellation or a session not attended: its units are forfeited."""

    contact_name: str
    reason: str  # cancelled_late | no_show
    units: str
    soc_phone: str


@dataclass(frozen=True, kw_only=True)
class TopUp(Context):
    """§3.11.2: a SOW needs more units than are available: the quote and purchase order."""

    sr_id: str
    title: str
    customer: str
    name: str  # the account manager's name ("" for the SOC's copy)
    planned: str
    available: str  # of the planned units, what the balance covers
    shortfall: str
    order_by: str  # 30 days after the first notice
    reminder: bool


@dataclass(frozen=True, kw_only=True)
class UnitsExpiring(Context):
    """§3.11: units not covered by an agreed SOW, 90 and 30 days before their lot expires."""

    customer: str
    name: str
    reference: str
    valid_until: str
    units: str
    days: int


@dataclass(frozen=True, kw_only=True)
class UnitsExpired(UnitFigures):
    """§3.11.2: a lot's validity ended with units left."""

    customer: str
    name: str
    reference: str
    valid_until: str
    units: str


@dataclass(frozen=True, kw_only=True)
class ScanReminder(Context):
    """§3.13.1: the remediation scan is to be requested within 30 days of the report review."""

    sr_id: str
    title: str
    contact_name: str
    reviewed_on: str
    request_by: str
    perform_by: str
    soc_phone: str


@dataclass(frozen=True, kw_only=True)
class ScanFlag(Context):
    """§3.13.1: what the SOC is told of: a late remediation request, a late reschedule."""

    sr_id: str
    title: str
    customer: str
    flag: str  # late_remediation_request | late_reschedule
    detail: str
