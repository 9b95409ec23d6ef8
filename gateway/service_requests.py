"""Step 5 of intake: carry out a decision: open, add to, reopen, follow up an SR, or hold."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from gateway import entitlements, service_levels, store
from gateway.hours import Calendar
from gateway.notices import answer, reply_language
from gateway.runtime import Runtime
from gateway.store import Thread
from gateway.triage import Action, Decision, Facts, Notice
from parsers.signals import asks_for_rca, request_type, title

PRIORITY_BY_EMAIL = 3  # §3.5.2 footnote 2: e-mail SRs are logged as Priority 3
Deliveries = tuple[tuple[int, str], ...]


@dataclass(frozen=True)
class Applied:
    sr_public_id: str | None
    deliveries: Deliveries


@dataclass(frozen=True)
class OpenedRequest:
    """What the notices of a new SR say about it."""

    id: int
    public_id: str
    title: str
    type: str
    priority: int
    requested_priority: int | None
    requested_reason: str
    language: str
    entitlement: dict[str, Any]
    customer: str
    calendar: Calendar
    context: dict[str, Any]  # target, due time, follow-up, RCA note


def open_request(
    conn: Connection,
    rt: Runtime,
    facts: Facts,
    decision: Decision,
    stored: int,
    follow_up_of: Thread | None = None,
) -> Applied:
    """R1.2–R1.5, R1.9, R1.10: a new SR at P3, its message, its first deadline, its notices."""
    sender, mail, now = facts.sender, facts.mail, facts.now
    assert sender.customer_id is not None  # the rules open SRs for contacts only
    assert sender.calendar is not None
    calendar = sender.calendar
    today = now.astimezone(calendar.zone).date()
    coverage = entitlements.check(
        conn, sender.customer_id, f"{mail.subject}\n{facts.reply_text}", today
    )
    kind = request_type(mail.subject)
    requested = facts.requested
    fields: dict[str, Any] = {
        "title": title(mail.subject),
        "type": kind,
        "priority": PRIORITY_BY_EMAIL,
        "requested_priority": requested.priority if requested else None,
        "requested_reason": requested.reason if requested else "",
        "language": facts.language or sender.language or "en",
        "entitlement": coverage.as_context(),
    }
    sr_id, public_id = store.add_request(
        conn,
        customer_id=sender.customer_id,
        requester_id=sender.contact_id,
        state="open",
        follow_up_of_id=follow_up_of.sr_id if follow_up_of else None,
        created_at=now,
        updated_at=now,
        initial_response_at=None,
        **fields,
    )
    store.add_message(
        conn,
        sr_id=sr_id,
        stored=stored,
        mail=mail,
        author_kind="contact",
        reply_text=facts.reply_text,
        language=facts.language,
        now=now,
    )
    target = service_levels.initial_response(kind, PRIORITY_BY_EMAIL)
    due = service_levels.due_at(target, now, calendar)
    store.add_deadline(conn, sr_id, "initial_response", due, now)
    opened = OpenedRequest(
        id=sr_id,
        public_id=public_id,
        customer=sender.customer_name,
        calendar=calendar,
        context={
            "target": target.label,
            "due_at": _local(due, calendar),
            "follow_up_of": follow_up_of.public_id if follow_up_of else None,
            "rca": asks_for_rca(mail.subject, facts.reply_text),
        },
        **fields,
    )
    return Applied(public_id, _notices(conn, rt, facts, decision, stored, opened))


def add_to_request(
    conn: Connection, rt: Runtime, facts: Facts, decision: Decision, stored: int
) -> Applied:
    """R1.6: a reply is a message on its SR. A contact's reply ends "waiting for customer"."""
    thread = facts.thread
    assert thread is not None
    author = "soc" if facts.sender.kind == "soc" else "automatic" if facts.automatic else "contact"
    store.add_message(
        conn,
        sr_id=thread.sr_id,
        stored=stored,
        mail=facts.mail,
        author_kind=author,
        reply_text=facts.reply_text,
        language=facts.language,
        now=facts.now,
    )
    changes: dict[str, Any] = {"updated_at": facts.now}
    if author == "contact" and thread.state == "waiting":
        changes["state"] = "open"
    if decision.action is Action.REOPEN:
        changes["state"] = "open"  # R1.6: a reply to a resolved SR reopens it
    store.set_request(conn, thread.sr_id, **changes)
    return Applied(thread.public_id, _notices(conn, rt, facts, decision, stored, None))


def follow_up(
    conn: Connection, rt: Runtime, facts: Facts, decision: Decision, stored: int
) -> Applied:
    """R1.6: a reply to a closed SR opens a new SR linked to it; the closed one stays closed."""
    return open_request(conn, rt, facts, decision, stored, follow_up_of=facts.thread)


def hold(conn: Connection, rt: Runtime, facts: Facts, decision: Decision, stored: int) -> Applied:
    """R1.8: the mail is kept for review; it opens and updates nothing."""
    return Applied(None, _notices(conn, rt, facts, decision, stored, None))


APPLY: dict[Action, Callable[[Connection, Runtime, Facts, Decision, int], Applied]] = {
    Action.OPEN: open_request,
    Action.ADD: add_to_request,
    Action.REOPEN: add_to_request,
    Action.FOLLOW_UP: follow_up,
    Action.HOLD: hold,
    Action.BOUNCE: hold,
}


# --- the notices of a decision -------------------------------------------------------------------

NoticeWriter = Callable[
    [Connection, Runtime, Facts, Notice, int, "OpenedRequest | None"], tuple[int, str]
]


def _notices(
    conn: Connection,
    rt: Runtime,
    facts: Facts,
    decision: Decision,
    stored: int,
    opened: OpenedRequest | None,
) -> Deliveries:
    return tuple(
        NOTICE_WRITERS[notice.template](conn, rt, facts, notice, stored, opened)
        for notice in decision.notices
    )


def _acknowledgement(
    conn: Connection,
    rt: Runtime,
    facts: Facts,
    notice: Notice,
    stored: int,
    sr: OpenedRequest | None,
) -> tuple[int, str]:
    """R1.5: SR ID, priority, response target, telephone, how to reply; R1.4, R1.9, R1.10."""
    assert sr is not None
    language = reply_language(sr.language, sr.calendar, facts.now)
    context = {
        **_sr_context(sr, rt),
        **sr.context,
        "contact_name": facts.sender.name,
        "requested_priority": sr.requested_priority,
        "telephone_first": sr.requested_priority == 1,
        "entitlement": sr.entitlement,
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


def _soc_alert(
    conn: Connection,
    rt: Runtime,
    facts: Facts,
    notice: Notice,
    stored: int,
    sr: OpenedRequest | None,
) -> tuple[int, str]:
    """R1.4: the SOC hears at once of a P1 asked for by e-mail."""
    assert sr is not None
    context = {
        **_sr_context(sr, rt),
        "customer": sr.customer,
        "requester": facts.sender.name,
        "requester_address": facts.sender.address,
        "reason": sr.requested_reason,
        "excerpt": facts.reply_text[:4000],
    }
    return answer(
        conn,
        rt,
        template=notice.template,
        recipient=rt.settings.soc_queue_address,
        mail=None,
        context=context,
        now=facts.now,
        audience="soc",
        sr_id=sr.id,
        label=sr.public_id,
        raw_mail_id=stored,
        auto_submitted="auto-generated",
    )


def _unregistered(
    conn: Connection,
    rt: Runtime,
    facts: Facts,
    notice: Notice,
    stored: int,
    sr: OpenedRequest | None,
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


NOTICE_WRITERS: dict[str, NoticeWriter] = {
    "request_opened": _acknowledgement,
    "priority1_requested": _soc_alert,
    "sender_unregistered": _unregistered,
}


def _sr_context(sr: OpenedRequest, rt: Runtime) -> dict[str, Any]:
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
