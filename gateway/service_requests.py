"""Step 5 of intake: carry out a decision: open, add to, reopen, follow up an SR, or hold."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from gateway import entitlements, service_levels, store
from gateway.hours import Calendar
from gateway.models import Contact, Delivery, ServiceRequest, StoredMail
from gateway.notices import answer, calendar_of, reply_language
from gateway.runtime import Runtime
from gateway.triage import Action, Decision, Facts, Notice
from parsers.signals import asks_for_rca, request_type, title

PRIORITY_BY_EMAIL = 3  # §3.5.2 footnote 2: e-mail SRs are logged as Priority 3


@dataclass(frozen=True)
class Applied:
    sr_public_id: str | None
    deliveries: tuple[Delivery, ...]


def open_request(
    session: Session,
    rt: Runtime,
    facts: Facts,
    decision: Decision,
    stored: StoredMail,
    follow_up_of: ServiceRequest | None = None,
) -> Applied:
    """R1.2–R1.5, R1.9, R1.10: a new SR at P3, its message, its first deadline, its notices."""
    contact = session.get_one(Contact, facts.sender.contact_id)
    customer, mail, now = contact.customer, facts.mail, facts.now
    calendar = calendar_of(customer)
    today = now.astimezone(calendar.zone).date()
    coverage = entitlements.check(
        session, customer.id, f"{mail.subject}\n{facts.reply_text}", today
    )
    kind = request_type(mail.subject)
    sr = ServiceRequest(
        public_id=store.new_public_id(session),
        customer_id=customer.id,
        requester_id=contact.id,
        title=title(mail.subject),
        type=kind,
        priority=PRIORITY_BY_EMAIL,
        requested_priority=facts.requested.priority if facts.requested else None,
        requested_reason=facts.requested.reason if facts.requested else "",
        state="open",
        language=facts.language or contact.language or "en",
        entitlement=coverage.as_context(),
        follow_up_of_id=follow_up_of.id if follow_up_of else None,
        created_at=now,
        updated_at=now,
        initial_response_at=None,
    )
    session.add(sr)
    session.flush()
    store.add_message(
        session,
        sr=sr,
        raw=stored,
        mail=mail,
        author_kind="contact",
        reply_text=facts.reply_text,
        language=facts.language,
        now=now,
    )
    target = service_levels.initial_response(kind, PRIORITY_BY_EMAIL)
    due = service_levels.due_at(target, now, calendar)
    store.add_deadline(session, sr, "initial_response", due, now)
    context = {
        "target": target.label,
        "due_at": _local(due, calendar),
        "follow_up_of": follow_up_of.public_id if follow_up_of else None,
        "rca": asks_for_rca(mail.subject, facts.reply_text),
    }
    return Applied(sr.public_id, _notices(session, rt, facts, decision, stored, sr, context))


def add_to_request(
    session: Session, rt: Runtime, facts: Facts, decision: Decision, stored: StoredMail
) -> Applied:
    """R1.6: a reply is a message on its SR. A contact's reply ends "waiting for customer"."""
    assert facts.thread is not None
    sr = session.get_one(ServiceRequest, facts.thread.sr_id)
    author = "soc" if facts.sender.kind == "soc" else "automatic" if facts.automatic else "contact"
    store.add_message(
        session,
        sr=sr,
        raw=stored,
        mail=facts.mail,
        author_kind=author,
        reply_text=facts.reply_text,
        language=facts.language,
        now=facts.now,
    )
    sr.updated_at = facts.now
    if author == "contact" and sr.state == "waiting":
        sr.state = "open"
    return Applied(sr.public_id, _notices(session, rt, facts, decision, stored, sr, {}))


def reopen_request(
    session: Session, rt: Runtime, facts: Facts, decision: Decision, stored: StoredMail
) -> Applied:
    """R1.6: a reply to a resolved SR reopens it."""
    applied = add_to_request(session, rt, facts, decision, stored)
    assert facts.thread is not None
    session.get_one(ServiceRequest, facts.thread.sr_id).state = "open"
    return applied


def follow_up(
    session: Session, rt: Runtime, facts: Facts, decision: Decision, stored: StoredMail
) -> Applied:
    """R1.6: a reply to a closed SR opens a new SR linked to it; the closed one stays closed."""
    assert facts.thread is not None
    closed = session.get_one(ServiceRequest, facts.thread.sr_id)
    return open_request(session, rt, facts, decision, stored, follow_up_of=closed)


def hold(
    session: Session, rt: Runtime, facts: Facts, decision: Decision, stored: StoredMail
) -> Applied:
    """R1.8: the mail is kept for review; it opens and updates nothing."""
    return Applied(None, _notices(session, rt, facts, decision, stored, None, {}))


APPLY: dict[Action, Callable[[Session, Runtime, Facts, Decision, StoredMail], Applied]] = {
    Action.OPEN: open_request,
    Action.ADD: add_to_request,
    Action.REOPEN: reopen_request,
    Action.FOLLOW_UP: follow_up,
    Action.HOLD: hold,
    Action.BOUNCE: hold,
}


# --- the notices of a decision -------------------------------------------------------------------


def _notices(
    session: Session,
    rt: Runtime,
    facts: Facts,
    decision: Decision,
    stored: StoredMail,
    sr: ServiceRequest | None,
    extra: dict[str, Any],
) -> tuple[Delivery, ...]:
    return tuple(
        NOTICE_WRITERS[notice.template](session, rt, facts, notice, stored, sr, extra)
        for notice in decision.notices
    )


def _acknowledgement(
    session: Session,
    rt: Runtime,
    facts: Facts,
    notice: Notice,
    stored: StoredMail,
    sr: ServiceRequest | None,
    extra: dict[str, Any],
) -> Delivery:
    """R1.5: SR ID, priority, response target, telephone, how to reply; R1.4, R1.9, R1.10."""
    assert sr is not None
    language = reply_language(sr.language, calendar_of(sr.customer), facts.now)
    context = {
        **_sr_context(sr, rt),
        **extra,
        "contact_name": facts.sender.name,
        "requested_priority": sr.requested_priority,
        "telephone_first": sr.requested_priority == 1,
        "entitlement": sr.entitlement,
        "outside_hours": language.outside_hours,
        "wanted_language": language.wanted,
    }
    return answer(
        session,
        rt,
        now=facts.now,
        template=notice.template,
        recipient=facts.sender.address,
        mail=facts.mail,
        context=context,
        language=language.code,
        sr=sr,
        raw_mail_id=stored.id,
    )


def _soc_alert(
    session: Session,
    rt: Runtime,
    facts: Facts,
    notice: Notice,
    stored: StoredMail,
    sr: ServiceRequest | None,
    extra: dict[str, Any],
) -> Delivery:
    """R1.4: the SOC hears at once of a P1 asked for by e-mail."""
    assert sr is not None
    context = {
        **_sr_context(sr, rt),
        "customer": sr.customer.name,
        "requester": facts.sender.name,
        "requester_address": facts.sender.address,
        "reason": sr.requested_reason,
        "excerpt": facts.reply_text[:4000],
    }
    return answer(
        session,
        rt,
        now=facts.now,
        template=notice.template,
        recipient=rt.settings.soc_queue_address,
        mail=None,
        context=context,
        audience="soc",
        sr=sr,
        raw_mail_id=stored.id,
        auto_submitted="auto-generated",
    )


def _unregistered(
    session: Session,
    rt: Runtime,
    facts: Facts,
    notice: Notice,
    stored: StoredMail,
    sr: ServiceRequest | None,
    extra: dict[str, Any],
) -> Delivery:
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
        session,
        rt,
        now=facts.now,
        template=notice.template,
        recipient=facts.mail.from_addr,
        mail=facts.mail,
        context=context,
        language=language.code,
        raw_mail_id=stored.id,
    )


NOTICE_WRITERS = {
    "request_opened": _acknowledgement,
    "priority1_requested": _soc_alert,
    "sender_unregistered": _unregistered,
}


def _sr_context(sr: ServiceRequest, rt: Runtime) -> dict[str, Any]:
    return {
        "sr_id": sr.public_id,
        "title": sr.title,
        "priority": sr.priority,
        "type": sr.type,
        "soc_phone": rt.settings.soc_phone,
        "soc_address": rt.settings.gateway_address,
    }


def _local(instant: Any, calendar: Calendar) -> str:
    return f"{instant.astimezone(calendar.zone):%Y-%m-%d %H:%M %Z}"
