"""Step 5 of intake: carry out a decision: open, add to, reopen, follow up an SR, or hold.

The SOC's own mail on an SR (answers, notes, commands) is carried out by `gateway.soc`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from gateway import entitlements, escalations, reviews, service_levels, soc, store
from gateway.hours import Calendar
from gateway.notices import alert, answer, reply_language, sendable_files
from gateway.outbox import SOC_QUEUE
from gateway.runtime import Runtime
from gateway.store import RequestRow, Thread
from gateway.triage import Action, Decision, Facts, Notice
from parsers.mail import is_tnef
from parsers.signals import asks_for_rca, request_type, title

PRIORITY_BY_EMAIL = 3  # §3.5.2 footnote 2: e-mail SRs are logged as Priority 3
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
    assert sender.customer_id is not None  # the rules open SRs for contacts only
    assert sender.calendar is not None
    today = now.astimezone(sender.calendar.zone).date()
    coverage = entitlements.check(
        conn, sender.customer_id, f"{mail.subject}\n{facts.reply_text}", today
    )
    requested = facts.requested
    fields: dict[str, Any] = {
        "title": title(mail.subject),
        "type": request_type(mail.subject),
        "priority": PRIORITY_BY_EMAIL,
        "requested_priority": requested.priority if requested else None,
        "language": facts.language or sender.language or "en",
        "state": "open",
    }
    sr_id, public_id = store.add_request(
        conn,
        customer_id=sender.customer_id,
        requester_id=sender.contact_id,
        requested_reason=requested.reason if requested else "",
        entitlement=coverage.as_context(),
        follow_up_of_id=follow_up_of.sr_id if follow_up_of else None,
        created_at=now,
        updated_at=now,
        initial_response_at=None,
        **fields,
    )
    message = store.add_message(
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
        customer_id=sender.customer_id,
        customer=sender.customer_name,
        calendar=sender.calendar,
        requester=sender.address,
        requester_name=sender.name,
        assigned_to=None,
        created_at=now,
        initial_response_at=None,
        last_soc_update_at=None,
        **fields,
    )
    due = _arm_clocks(conn, rt, sr, now)
    goal = service_levels.initial_response(sr.type, sr.priority, rt.settings)
    extra = {
        "target": goal.label,
        "due_at": _local(due, sr.calendar),
        "entitlement": coverage.as_context(),
        "requested_reason": requested.reason if requested else "",
        "follow_up_of": follow_up_of.public_id if follow_up_of else None,
        "rca": asks_for_rca(mail.subject, facts.reply_text),
    }
    deliveries = _notices(conn, rt, facts, decision, stored, message, sr, extra)
    if requested is not None and requested.priority <= 2:
        deliveries += tuple(reviews.notify_tam(conn, rt, sr, now))  # R2.5: at once for P1/P2
    return Applied(public_id, deliveries + _escalate(conn, rt, facts, decision, sr))


def _arm_clocks(conn: Connection, rt: Runtime, sr: RequestRow, now: datetime) -> datetime:
    """The new SR's clocks: Initial Response, not-updated, and SecureHands' SOW response."""
    due = service_levels.arm(conn, rt.settings, sr, "initial_response", now, now)
    service_levels.arm(conn, rt.settings, sr, "update", now, now)
    if service_levels.applies("sow_response", sr.type):
        service_levels.arm(conn, rt.settings, sr, "sow_response", now, now)
    return due


def add_to_request(
    conn: Connection, rt: Runtime, facts: Facts, decision: Decision, stored: int
) -> Applied:
    """R1.6: a reply is a message on its SR. A contact's reply ends "waiting for customer";
    a reply to a resolved SR reopens it."""
    thread = facts.thread
    assert thread is not None
    author = "automatic" if facts.automatic else "contact"
    message = store.add_message(
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
        thread.state == "waiting" or decision.action is Action.REOPEN
    )
    store.set_request(
        conn, thread.sr_id, updated_at=facts.now, **({"state": "open"} if reopened else {})
    )
    sr = store.request_row(conn, thread.sr_id)
    if reopened:
        service_levels.rearm_update(conn, rt.settings, sr, facts.now)
    deliveries = _notices(conn, rt, facts, decision, stored, message, sr, {})
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
    return Applied(None, _notices(conn, rt, facts, decision, stored, None, None, {}))


APPLY: dict[Action, Callable[[Connection, Runtime, Facts, Decision, int], Applied]] = {
    Action.OPEN: open_request,
    Action.ADD: add_to_request,
    Action.REOPEN: add_to_request,
    Action.FOLLOW_UP: follow_up,
    Action.ANSWER: soc_mail,
    Action.NOTE: soc_mail,
    Action.HOLD: hold,
    Action.BOUNCE: hold,
}


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


# --- the notices of a decision -------------------------------------------------------------------

# Each writer gets the stored mail's id, the id of the Message made of it (None when it was
# held), the SR, and the facts of it the caller worked out (`extra`).
NoticeWriter = Callable[
    [Connection, Runtime, Facts, Notice, int, int | None, RequestRow | None, dict[str, Any]],
    tuple[int, str],
]


def _notices(
    conn: Connection,
    rt: Runtime,
    facts: Facts,
    decision: Decision,
    stored: int,
    message: int | None,
    sr: RequestRow | None,
    extra: dict[str, Any],
) -> Deliveries:
    return tuple(
        NOTICE_WRITERS[(notice.template, notice.audience)](
            conn, rt, facts, notice, stored, message, sr, extra
        )
        for notice in decision.notices
    )


def _acknowledgement(
    conn: Connection,
    rt: Runtime,
    facts: Facts,
    notice: Notice,
    stored: int,
    message: int | None,
    sr: RequestRow | None,
    extra: dict[str, Any],
) -> tuple[int, str]:
    """R1.5: SR ID, priority, response target, telephone, how to reply; R1.4, R1.9, R1.10."""
    assert sr is not None
    language = reply_language(sr.language, sr.calendar, facts.now)
    context = {
        **_sr_context(sr, rt),
        **extra,
        "contact_name": facts.sender.name,
        "requested_priority": sr.requested_priority,
        "telephone_first": sr.requested_priority == 1,
        "outside_hours": language.outside_hours,
        "wanted_language": language.wanted,
    }
    return answer(
        conn,
        rt,
        template=notice.template,
        recipient=facts.sender.address,
        mail=facts.mail,
        context=context,
        now=facts.now,
        language=language.code,
        sr_id=sr.id,
        label=sr.public_id,
        raw_mail_id=stored,
    )


def _soc_notification(
    conn: Connection,
    rt: Runtime,
    facts: Facts,
    notice: Notice,
    stored: int,
    message: int | None,
    sr: RequestRow | None,
    extra: dict[str, Any],
) -> tuple[int, str]:
    """R2.1: a new SR or a customer's reply, to the SOC queue, to be answered from there."""
    assert sr is not None
    mail = facts.mail
    files: list[int] = []
    if message is not None and mail.attachments:  # the customer's files go with the copy
        files = sendable_files(conn, message, rt.settings.soc_copy_files_limit)
    sendable = [a for a in mail.attachments if not is_tnef(a.filename, a.content_type)]
    context = {
        **_sr_context(sr, rt),
        **extra,
        "files": files,
        "files_held": len(sendable) - len(files),
        "customer": sr.customer,
        "requester": facts.sender.name,
        "requester_address": facts.sender.address,
        "requested_priority": sr.requested_priority,
        "state": sr.state,
        "text": facts.reply_text[:20_000],
        "subject": mail.subject,
        "attachments": [{"name": a.filename, "size": a.size} for a in mail.attachments],
        "escalation_asked": facts.escalation_asked,
        "note_address": rt.settings.note_address,
    }
    return alert(
        conn,
        rt,
        template=notice.template,
        recipient=rt.settings.soc_queue_address,
        context=context,
        now=facts.now,
        sr_id=sr.id,
        label=sr.public_id,
        raw_mail_id=stored,
        queue=SOC_QUEUE,  # after the customer's acknowledgement and the SOC's alerts
    )


def _soc_alert(
    conn: Connection,
    rt: Runtime,
    facts: Facts,
    notice: Notice,
    stored: int,
    message: int | None,
    sr: RequestRow | None,
    extra: dict[str, Any],
) -> tuple[int, str]:
    """R1.4: the SOC hears at once of a P1 asked for by e-mail."""
    assert sr is not None
    context = {
        **_sr_context(sr, rt),
        "customer": sr.customer,
        "requester": facts.sender.name,
        "requester_address": facts.sender.address,
        "reason": extra.get("requested_reason", ""),
        "excerpt": facts.reply_text[:4000],
    }
    return alert(
        conn,
        rt,
        template=notice.template,
        recipient=rt.settings.soc_queue_address,
        context=context,
        now=facts.now,
        sr_id=sr.id,
        label=sr.public_id,
        raw_mail_id=stored,
    )


def _unregistered(
    conn: Connection,
    rt: Runtime,
    facts: Facts,
    notice: Notice,
    stored: int,
    message: int | None,
    sr: RequestRow | None,
    extra: dict[str, Any],
) -> tuple[int, str]:
    """R1.8: one polite notice; nothing of the mail is reflected back (no subject, no text)."""
    settings = rt.settings
    calendar = Calendar(settings.default_timezone, settings.default_country)
    language = reply_language(facts.language or "en", calendar, facts.now)
    context = {
        "soc_phone": settings.soc_phone,
        "soc_address": settings.gateway_address,
        "outside_hours": language.outside_hours,
        "wanted_language": language.wanted,
    }
    return answer(
        conn,
        rt,
        template=notice.template,
        recipient=facts.mail.from_addr,
        mail=facts.mail,
        context=context,
        now=facts.now,
        language=language.code,
        raw_mail_id=stored,
    )


def _refused_commands(
    conn: Connection,
    rt: Runtime,
    facts: Facts,
    notice: Notice,
    stored: int,
    message: int | None,
    sr: RequestRow | None,
    extra: dict[str, Any],
) -> tuple[int, str]:
    """R2.2: commands that name no SR are refused, with the reason."""
    return soc.confirm(conn, rt, None, facts, soc.refuse_all(facts, "no Service Request named"))


NOTICE_WRITERS: dict[tuple[str, str], NoticeWriter] = {
    ("request_opened", "customer"): _acknowledgement,
    ("request_opened", "soc"): _soc_notification,
    ("customer_replied", "soc"): _soc_notification,
    ("priority1_requested", "soc"): _soc_alert,
    ("sender_unregistered", "customer"): _unregistered,
    ("command_result", "soc"): _refused_commands,
}


def _sr_context(sr: RequestRow, rt: Runtime) -> dict[str, Any]:
    return {
        "sr_id": sr.public_id,
        "title": sr.title,
        "priority": sr.priority,
        "type": sr.type,
        "soc_phone": rt.settings.soc_phone,
        "soc_address": rt.settings.gateway_address,
    }


def _local(instant: datetime, calendar: Calendar) -> str:
    return f"{instant.astimezone(calendar.zone):%Y-%m-%d %H:%M %Z}"
