"""§3.11.6, §3.11.7: a delivered session's acceptance, 2 working days after its statement, unless
the customer's answer on the statement's thread queried it first; the query's decision.

A customer's answer before the deadline is a query when parsers/disputes.py reads it as one; any
other answer, and every answer after the deadline, is feedback: kept with the session (the mail
itself is on the SR) and acceptance goes on.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from gateway.securehands import clocks, ledger, statements
from gateway.securehands.acts import Act, Deliveries, Done, Refused
from gateway.securehands.queries import customer, lock_customer, stop_clocks
from gateway.securehands.records import SessionRow, save_session, session, sessions
from gateway.securehands.units import shown
from gateway.storage.records import RequestRow
from parsers.disputes import is_query
from parsers.mail import ParsedMail

WAITING = "delivered"  # a statement sent, acceptance to come
QUERIED = "queried"


def accept(act: Act, row: SessionRow) -> bool:
    """The acceptance Deadline passed with no query: the pending units become a debit. The
    customer is told nothing more: the statement said when this would happen."""
    row = _fresh(act, row)
    if not save_session(
        act.conn, replace(row, state="accepted", decision="accepted", decided_at=act.now), WAITING
    ):
        return False  # queried, or accepted by another clock
    ledger.settle(act, customer(act.conn, row.customer_id), row.id)
    return True


def answered(act: Act, sr: RequestRow, mail: ParsedMail, text: str, sender: str) -> Deliveries:
    """A contact's mail on the SR: on a statement's thread it is a query or feedback."""
    found = _statement_answered(act, sr, mail)
    if found is None:
        return ()
    row = _fresh(act, found)
    waiting = row.state == WAITING and row.accept_at is not None and act.now < row.accept_at
    if waiting and is_query(text):
        return _query(act, sr, row, text, sender)
    feedback = "\n\n".join(part for part in (row.feedback, text.strip()) if part)
    save_session(act.conn, replace(row, feedback=feedback), row.state)
    return ()


def _fresh(act: Act, row: SessionRow) -> SessionRow:
    """The session as it is now, under the customer's lock: every writer of a delivered or
    queried session (the clock, a reply, SOC management) takes it, so none undoes another."""
    lock_customer(act.conn, row.customer_id)
    return session(act.conn, row.id) or row


def _statement_answered(act: Act, sr: RequestRow, mail: ParsedMail) -> SessionRow | None:
    """The session whose statement the mail answers (In-Reply-To, or the last of References);
    a mail that answers nothing, on an SR with one session waiting, answers that one."""
    parents = set(mail.in_reply_to) | set(mail.references[-1:])
    delivered = [s for s in sessions(act.conn, sr_id=sr.id) if s.statement_message_id]
    for row in delivered:
        if row.statement_message_id in parents:
            return row
    waiting = [s for s in delivered if s.state == WAITING]
    if not parents and len(waiting) == 1:
        return waiting[0]
    return None


def _query(act: Act, sr: RequestRow, row: SessionRow, text: str, sender: str) -> Deliveries:
    """§3.11.7: the debit stays pending; SOC management is alerted with the customer's text and
    has 5 working days."""
    changed = replace(row, state=QUERIED, queried_at=act.now, query_text=text.strip())
    if not save_session(act.conn, changed, WAITING):
        return ()
    stop_clocks(act.conn, (clocks.ACCEPTANCE,), act.now, session_id=row.id)
    due = clocks.arm_query(
        act.conn, row.id, sr.id, act.now, sr.calendar, act.rt.settings.warn_at_fraction
    )
    return (statements.queried(act, sr, changed, sender, text.strip(), due),)


def decide(act: Act, sr: RequestRow, row: SessionRow, credit: Decimal | None, reason: str) -> Done:
    """§3.11.7: SOC management credits all or part of the session's units, or confirms them;
    the debit is final and the customer gets one mail with the decision and the balance."""
    if row.state != QUERIED:
        raise Refused(f"session {row.id} is {row.state}, not queried")
    units = row.units or Decimal(0)
    if credit is not None and credit > units:
        raise Refused(f"session {row.id} counted {shown(units)} units; at most that is credited")
    decision = "credit" if credit else "confirm"
    return _settle(act, sr, row, credit or Decimal(0), decision, reason)


def lapse(act: Act, sr: RequestRow, row: SessionRow) -> Deliveries:
    """§3.11.7: 5 working days passed and nothing was credited: the debit stands."""
    if row.state != QUERIED:
        return ()
    done = _settle(act, sr, row, Decimal(0), "lapsed", "no credit within 5 working days")
    return done.deliveries


def _settle(
    act: Act, sr: RequestRow, row: SessionRow, credit: Decimal, decision: str, reason: str
) -> Done:
    owner = customer(act.conn, row.customer_id)
    row = _fresh(act, row)
    changed = replace(
        row,
        state="accepted",
        decision=decision,
        decided_at=act.now,
        credited=credit,
        note=reason,
        updated_by=act.by,
    )
    if not save_session(act.conn, changed, QUERIED):
        raise Refused(f"session {row.id} was decided meanwhile")
    ledger.settle(act, owner, row.id)
    if credit > 0:
        ledger.credit(act, owner, row.id, credit, reason)
    stop_clocks(act.conn, (clocks.QUERY,), act.now, session_id=row.id)
    mail = statements.decided(act, sr, changed, decision, reason, ledger.figures(act, owner))
    after = ledger.figures(act, owner).available
    what = f"{shown(credit)} units credited" if credit > 0 else "units confirmed"
    return Done(f"session {row.id}: {what}; available {shown(after)}", (mail,))
