"""Step 7: carry out a decision on a customer's mail: open, add to, reopen or follow up an SR,
or hold it. The SOC's own mail on an SR (answers, notes, commands) is carried out by
`requests/soc.py`; the mails each decision asks for are written by `requests/notices.py`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from gateway.core.hours import Calendar
from gateway.core.runtime import Runtime
from gateway.core.vocabulary import State
from gateway.requests import entitlements, soc, updates
from gateway.requests.decision import (
    Action,
    Decision,
    Facts,
    NotFromAContact,
    NotOnAnSR,
    Occasion,
    Opening,
    Thread,
)
from gateway.requests.queries import (
    NewRequest,
    StateChange,
    add_message,
    add_request,
    record_opening,
    record_state,
    set_request,
)
from gateway.securehands import acceptance
from gateway.securehands.acts import Act
from gateway.sla import escalations, reviews, service_levels
from gateway.storage.records import RequestRow, request_row
from parsers.signals import asks_for_rca, request_type, title

PRIORITY_BY_EMAIL = 3  # §3.5.2 footnote 2: e-mail SRs are logged as Priority 3
_OPENING_CLOCKS = ("initial_response", "update", "sow_response")  # each where it applies
Deliveries = tuple[tuple[int, str], ...]


@dataclass(frozen=True)
class Applied:
    sr_public_id: str | None
    deliveries: Deliveries


def open_request(
    conn: Connection,
    rt: Runtime,
    facts: Facts,
    decision: Decision,
    stored: int,
    follow_up_of: Thread | None = None,
) -> Applied:
    """R1.2–R1.5, R1.9, R1.10: a new SR at P3, its message, its clocks, its notices."""
    sender, mail, now = facts.sender, facts.mail, facts.now
    if sender.customer_id is None or sender.calendar is None:
        raise NotFromAContact(f"{sender.address} is no contact: no SR is opened for it")
    today = now.astimezone(sender.calendar.zone).date()
    coverage = entitlements.check(
        conn, sender.customer_id, f"{mail.subject}\n{facts.reply_text}", today
    )
    requested = facts.requested
    new = NewRequest(
        customer_id=sender.customer_id,
        requester_id=sender.contact_id,
        title=title(mail.subject),
        type=request_type(mail.subject),
        priority=PRIORITY_BY_EMAIL,
        requested_priority=requested.priority if requested else None,
        requested_reason=requested.reason if requested else "",
        language=facts.language or sender.language or "en",
        state=State.open,
        entitlement=coverage.as_context(),
        follow_up_of_id=follow_up_of.sr_id if follow_up_of else None,
        created_at=now,
        updated_at=now,
    )
    sr_id, public_id = add_request(conn, new)
    record_opening(conn, StateChange(sr_id, now, State.open, sender.address))
    message = add_message(
        conn,
        sr_id=sr_id,
        stored=stored,
        mail=mail,
        author_kind="contact",
        reply_text=facts.reply_text,
        language=facts.language,
        now=now,
    )
    sr = RequestRow(
        sr_id,
        public_id,
        new.title,
        new.type,
        new.priority,
        new.requested_priority,
        new.state,
        new.language,
        customer_id=sender.customer_id,
        customer=sender.customer_name,
        calendar=sender.calendar,
        requester=sender.address,
        requester_name=sender.name,
        assigned_to=None,
        created_at=now,
        initial_response_at=None,
        last_soc_update_at=None,
    )
    due = _arm_clocks(conn, rt, sr, now)
    goal = service_levels.initial_response(sr.type, sr.priority, rt.settings)
    opening = Opening(
        target=goal.label,
        due_at=_local(due, sr.calendar),
        entitlement=coverage.as_context(),
        requested_reason=new.requested_reason,
        follow_up_of=follow_up_of.public_id if follow_up_of else None,
        rca=asks_for_rca(mail.subject, facts.reply_text),
    )
    occasion = Occasion(conn, rt, facts, stored, message, sr, opening)
    deliveries = _notices(occasion, decision)
    if requested is not None and requested.priority <= 2:
        deliveries += tuple(reviews.notify_tam(conn, rt, sr, now))  # R2.5: at once for P1/P2
    return Applied(public_id, deliveries + _escalate(conn, rt, facts, decision, sr))


def _arm_clocks(conn: Connection, rt: Runtime, sr: RequestRow, now: datetime) -> datetime:
    """The new SR's clocks: Initial Response, not-updated, and SecureHands' SOW response."""
    kinds = [k for k in _OPENING_CLOCKS if service_levels.applies(k, sr.type)]
    return service_levels.arm_all(conn, rt.settings, sr, kinds, now, now)["initial_response"]


def add_to_request(
    conn: Connection, rt: Runtime, facts: Facts, decision: Decision, stored: int
) -> Applied:
    """R1.6: a reply is a message on its SR. A contact's reply ends "waiting for customer";
    a reply to a resolved SR reopens it."""
    thread = facts.thread
    if thread is None:
        raise NotOnAnSR(f"{decision.rule}: the mail threads onto no SR")
    author = "automatic" if facts.automatic else "contact"
    message = add_message(
        conn,
        sr_id=thread.sr_id,
        stored=stored,
        mail=facts.mail,
        author_kind=author,
        reply_text=facts.reply_text,
        language=facts.language,
        now=facts.now,
    )
    reopened = author == "contact" and (
        thread.state == State.waiting or decision.action is Action.REOPEN
    )
    set_request(conn, thread.sr_id, updated_at=facts.now, state=State.open if reopened else None)
    sr = request_row(conn, thread.sr_id)
    tam: list[tuple[int, str]] = []
    asked = facts.requested if author == "contact" else None
    if asked and asked.priority < min(sr.priority, sr.requested_priority or sr.priority):
        # R1.3: recorded as requested, never applied; the TAM hears of P1/P2 at once (R2.5)
        set_request(conn, sr.id, requested_priority=asked.priority, requested_reason=asked.reason)
        sr = request_row(conn, sr.id)
        if asked.priority <= 2:
            tam = reviews.notify_tam(conn, rt, sr, facts.now)
    if reopened:
        record_state(conn, StateChange(sr.id, facts.now, State.open, facts.sender.address))
        service_levels.rearm_update(conn, rt.settings, sr, facts.now)
    deliveries = _notices(Occasion(conn, rt, facts, stored, message, sr), decision) + tuple(tam)
    if author == "contact":  # §3.11.7: an answer to a session completion statement: a query?
        act = Act(conn, rt, facts.sender.address, facts.now)
        deliveries += acceptance.answered(act, sr, facts.mail, facts.reply_text, act.by)
    return Applied(thread.public_id, deliveries + _escalate(conn, rt, facts, decision, sr))


def follow_up(
    conn: Connection, rt: Runtime, facts: Facts, decision: Decision, stored: int
) -> Applied:
    """R1.6: a reply to a closed SR opens a new SR linked to it; the closed one stays closed."""
    return open_request(conn, rt, facts, decision, stored, follow_up_of=facts.thread)


def soc_mail(
    conn: Connection, rt: Runtime, facts: Facts, decision: Decision, stored: int
) -> Applied:
    """R2.1, R2.2: an answer or an internal note of the SOC, with its commands."""
    public_id, deliveries = soc.answer_or_note(conn, rt, facts, decision, stored)
    return Applied(public_id, deliveries)


def hold(conn: Connection, rt: Runtime, facts: Facts, decision: Decision, stored: int) -> Applied:
    """R1.8: the mail is kept for review; it opens and updates nothing."""
    return Applied(None, _notices(Occasion(conn, rt, facts, stored), decision))


def support_updates(
    conn: Connection, rt: Runtime, facts: Facts, decision: Decision, stored: int
) -> Applied:
    """R4.2–R4.4: carried out by gateway/sus (requests/updates.py); it opens no SR."""
    deliveries = updates.CARRY_OUT[decision.action](conn, rt, facts, stored)
    return Applied(None, tuple(deliveries) + _notices(Occasion(conn, rt, facts, stored), decision))


APPLY: dict[Action, Callable[[Connection, Runtime, Facts, Decision, int], Applied]] = {
    Action.OPEN: open_request,
    Action.ADD: add_to_request,
    Action.REOPEN: add_to_request,
    Action.FOLLOW_UP: follow_up,
    Action.ANSWER: soc_mail,
    Action.NOTE: soc_mail,
    Action.HOLD: hold,
    Action.BOUNCE: support_updates,  # kept with status bounce (intake/receive.py), and counted
    Action.COMPLAINT: support_updates,  # held for review; one about a bulletin unsubscribes
    Action.SUBSCRIPTION: support_updates,
    Action.UNSUBSCRIBE: support_updates,
    Action.APPROVAL: support_updates,
}


def _notices(occasion: Occasion, decision: Decision) -> Deliveries:
    """The mails the decision asks for, each written by its own writer."""
    written = (notice.write(occasion, notice) for notice in decision.notices)
    return tuple(w for w in written if w is not None)


def _escalate(
    conn: Connection, rt: Runtime, facts: Facts, decision: Decision, sr: RequestRow
) -> Deliveries:
    """§3.5.5: a contact's mail asking for escalation opens (or renews) one."""
    if not decision.escalate:
        return ()
    return tuple(
        escalations.open_escalation(
            conn,
            rt,
            sr,
            source="customer",
            requested_by=facts.sender.address,
            reason=facts.mail.subject,
            now=facts.now,
            tell_requester=facts.autoreply_allowed,
        )
    )


def _local(instant: datetime, calendar: Calendar) -> str:
    return f"{instant.astimezone(calendar.zone):%Y-%m-%d %H:%M %Z}"
