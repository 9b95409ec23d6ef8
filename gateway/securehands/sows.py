"""§3.11, §3.12: Statements of Work of SecureHands and Technical Baseline Assessment SRs: agreed
(their planned units reserved, a shortfall quoted), finished (what they did not use released),
their report; and units bought (§3.11.2)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

from gateway.outbound.contexts.securehands import TopUp
from gateway.securehands import clocks, ledger, notices
from gateway.securehands.acts import Act, Deliveries, Done, Refused
from gateway.securehands.balance import ZERO
from gateway.securehands.queries import CustomerRow, customer
from gateway.securehands.records import SowRow, active_sow, add_sow, save_sow, sessions
from gateway.securehands.terms import SowTerms
from gateway.securehands.units import shown
from gateway.storage.records import RequestRow

SECUREHANDS_TYPES = ("securehands", "technical_baseline_assessment")  # §3.12.1: TBA is SecureHands
OPEN_SESSIONS = ("requested", "scheduled")


def buy(act: Act, owner: CustomerRow, units: Decimal, purchased_on: date, reference: str) -> Done:
    """§3.11.2: units bought in advance, valid 12 months from purchase."""
    ledger.purchase(act, owner, units, purchased_on, reference)
    after = ledger.figures(act, owner)
    return Done(
        f"{shown(units)} units bought for {owner.name} ({reference or 'no reference'}), "
        f"valid from {purchased_on}; available now {shown(after.available)}"
    )


def agree(act: Act, sr: RequestRow, terms: SowTerms) -> Done:
    """§3.11.2: a SOW agreed: its planned units are reserved; a shortfall is quoted."""
    if sr.type not in SECUREHANDS_TYPES:
        raise Refused(f"{sr.public_id} is an SR of type {sr.type}: it has no SecureHands SOW")
    current = active_sow(act.conn, sr.id)
    if current is not None:
        raise Refused(
            f"a SOW of {shown(current.planned_units)} units is agreed already; "
            "#sow-finished releases it first"
        )
    row = SowRow(
        id=0,
        sr_id=sr.id,
        customer_id=sr.customer_id,
        state="agreed",
        planned_units=terms.units,
        fixed_units=terms.fixed,
        out_of_hours_rate=terms.rate,
        shortfall=ZERO,
        report_files=[],
        agreed_at=act.now,
        agreed_by=act.by,
        finished_at=None,
    )
    sow_id = add_sow(act.conn, row)
    owner = customer(act.conn, sr.customer_id)
    available = ledger.figures(act, owner).available
    shortfall = ledger.reserve(act, owner, sow_id, terms.units)
    detail = f"SOW agreed: {shown(terms.units)} units reserved" + _terms(terms)
    if shortfall <= 0:
        return Done(f"{detail}; available {shown(available - terms.units)}")
    save_sow(act.conn, replace(row, id=sow_id, shortfall=shortfall))
    due = clocks.arm_topup(act.conn, sr.id, act.now)
    covered = terms.units - shortfall
    mails = top_up(act, sr, owner, terms.units, covered, shortfall, due.date(), reminder=False)
    return Done(f"{detail}; shortfall of {shown(shortfall)} units: top-up notice sent", mails)


def _terms(terms: SowTerms) -> str:
    fixed = f", {shown(terms.fixed)} units per session" if terms.fixed is not None else ""
    return f"{fixed}, {shown(terms.rate)} units per hour outside Business Hours – Standard"


def top_up(
    act: Act,
    sr: RequestRow,
    owner: CustomerRow,
    planned: Decimal,
    covered: Decimal,
    shortfall: Decimal,
    order_by: date,
    *,
    reminder: bool,
) -> Deliveries:
    """§3.11.2: the quote for the shortfall, to the account manager contacts and to the SOC."""
    soc_copy = TopUp(
        sr_id=sr.public_id,
        title=sr.title,
        customer=owner.name,
        name="",
        planned=shown(planned),
        available=shown(covered),
        shortfall=shown(shortfall),
        order_by=order_by.isoformat(),
        reminder=reminder,
    )
    mails = [
        notices.to_contact(act, person, "units_topup", replace(soc_copy, name=person.name), sr)
        for person in notices.account_managers(act, sr.customer_id)
    ]
    mails.append(notices.to_soc(act, sr, "units_topup", soc_copy))
    return tuple(mails)


def finish(act: Act, sr: RequestRow) -> Done:
    """The SOW is finished or withdrawn: what its reservation still holds is released."""
    row = _agreed(act, sr)
    waiting = [s.id for s in sessions(act.conn, sr_id=sr.id) if s.state in OPEN_SESSIONS]
    if waiting:
        raise Refused(f"session {waiting[0]} is still requested or scheduled: cancel it first")
    owner = customer(act.conn, sr.customer_id)
    released = ledger.release(act, owner, row.id, note="SOW finished")
    save_sow(act.conn, replace(row, state="finished", finished_at=act.now))
    available = ledger.figures(act, owner).available
    return Done(f"SOW finished: {shown(released)} units released; available {shown(available)}")


def report(act: Act, sr: RequestRow, files: list[int]) -> Done:
    """§3.12.1: the assessment's report, sent to the customer as this mail's attachment."""
    row = _agreed(act, sr)
    if not files:
        raise Refused("attach the report to the mail that carries #report")
    save_sow(act.conn, replace(row, report_files=[*row.report_files, *files]))
    return Done(f"report recorded ({len(files)} file{'s' if len(files) != 1 else ''})")


def _agreed(act: Act, sr: RequestRow) -> SowRow:
    row = active_sow(act.conn, sr.id)
    if row is None:
        raise Refused(f"no SOW is agreed on {sr.public_id}")
    return row
