"""Step 8: the notices of a decision, each a writer that builds its template's typed context
(outbound/contexts) and writes the Delivery in the mail's transaction (outbound/notices.py).

The triage table (intake/triage.py) names each notice with its writer.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from gateway.core.hours import Calendar
from gateway.core.values import columns
from gateway.outbound.contexts.requests import (
    CustomerRepliedSoc,
    FileInfo,
    Priority1Requested,
    RequestOpenedCustomer,
    RequestOpenedSoc,
    SenderUnregistered,
)
from gateway.outbound.notices import alert, answer, reply_language, sendable_files
from gateway.outbound.outbox import SOC_QUEUE
from gateway.requests import soc
from gateway.requests.decision import NoRequest, Notice, Occasion, Opening
from gateway.storage.limits import claim_notice
from gateway.storage.records import RequestRow
from parsers.parts import is_tnef

Written = tuple[int, str]


def acknowledgement(occasion: Occasion, notice: Notice) -> Written:
    """R1.5: SR ID, priority, response target, telephone, how to reply; R1.4, R1.9, R1.10."""
    sr, opening = _opened(occasion)
    facts, rt = occasion.facts, occasion.rt
    language = reply_language(sr.language, sr.calendar, facts.now)
    context = RequestOpenedCustomer(
        **_basics(occasion, sr),
        **columns(opening),
        requested_priority=sr.requested_priority,
        contact_name=facts.sender.name,
        telephone_first=sr.requested_priority == 1,
        outside_hours=language.outside_hours,
        wanted_language=language.wanted,
    )
    return answer(
        occasion.conn,
        rt,
        template=notice.template,
        recipient=facts.sender.address,
        mail=facts.mail,
        context=context,
        now=facts.now,
        language=language.code,
        sr_id=sr.id,
        label=sr.public_id,
        raw_mail_id=occasion.stored,
    )


def soc_copy(occasion: Occasion, notice: Notice) -> Written:
    """R2.1: a new SR or a customer's reply, to the SOC queue, to be answered from there; the
    customer's files go with it, up to GATEWAY_SOC_COPY_FILES_LIMIT."""
    sr, facts, rt = _request(occasion), occasion.facts, occasion.rt
    mail, settings = facts.mail, rt.settings
    files: list[int] = []
    if occasion.message is not None and mail.attachments:
        files = sendable_files(occasion.conn, occasion.message, settings.soc_copy_files_limit)
    sendable = [a for a in mail.attachments if not is_tnef(a.filename, a.content_type)]
    # A new SR's copy also states what its opening found out (R1.9, R1.10).
    kind = CustomerRepliedSoc if occasion.opening is None else RequestOpenedSoc
    context = kind(
        **_basics(occasion, sr),
        **(columns(occasion.opening) if occasion.opening is not None else {}),
        customer=sr.customer,
        requester=facts.sender.name,
        requester_address=facts.sender.address,
        requested_priority=sr.requested_priority,
        state=sr.state,
        text=facts.reply_text[:20_000],
        subject=mail.subject,
        attachments=[FileInfo(name=a.filename, size=a.size) for a in mail.attachments],
        files=files,
        files_held=len(sendable) - len(files),
        escalation_asked=facts.escalation_asked,
        note_address=settings.note_address,
    )
    return alert(
        occasion.conn,
        rt,
        template=notice.template,
        recipient=settings.soc_queue_address,
        context=context,
        now=facts.now,
        sr_id=sr.id,
        label=sr.public_id,
        raw_mail_id=occasion.stored,
        queue=SOC_QUEUE,  # after the customer's acknowledgement and the SOC's alerts
    )


def priority1_alert(occasion: Occasion, notice: Notice) -> Written:
    """R1.4: the SOC hears at once of a P1 asked for by e-mail, in a new SR or in a reply."""
    sr = _request(occasion)
    facts, rt = occasion.facts, occasion.rt
    if occasion.opening is not None:
        reason = occasion.opening.requested_reason
    else:
        reason = facts.requested.reason if facts.requested else ""
    context = Priority1Requested(
        **_basics(occasion, sr),
        customer=sr.customer,
        requester=facts.sender.name,
        requester_address=facts.sender.address,
        reason=reason,
        excerpt=facts.reply_text[:4000],
    )
    return alert(
        occasion.conn,
        rt,
        template=notice.template,
        recipient=rt.settings.soc_queue_address,
        context=context,
        now=facts.now,
        sr_id=sr.id,
        label=sr.public_id,
        raw_mail_id=occasion.stored,
    )


def unregistered(occasion: Occasion, notice: Notice) -> Written | None:
    """R1.8: one polite notice per interval; nothing of the mail is reflected back (no subject,
    no text). The interval is claimed in the database: of two listeners taking mail from the
    same stranger at once, one writes the notice."""
    facts, settings = occasion.facts, occasion.rt.settings
    since = facts.now - timedelta(hours=settings.notice_interval_hours)
    recipient = facts.mail.from_addr
    if not claim_notice(occasion.conn, recipient, notice.template, facts.now, since):
        return None
    calendar = Calendar(settings.default_timezone, settings.default_country)
    language = reply_language(facts.language or "en", calendar, facts.now)
    context = SenderUnregistered(
        soc_phone=settings.soc_phone,
        soc_address=settings.gateway_address,
        outside_hours=language.outside_hours,
        wanted_language=language.wanted,
    )
    return answer(
        occasion.conn,
        occasion.rt,
        template=notice.template,
        recipient=recipient,
        mail=facts.mail,
        context=context,
        now=facts.now,
        language=language.code,
        raw_mail_id=occasion.stored,
    )


def refused_commands(occasion: Occasion, notice: Notice) -> Written:
    """R2.2: commands that name no SR are refused, with the reason."""
    facts = occasion.facts
    outcomes = soc.refuse_all(facts, "no Service Request named")
    return soc.confirm(occasion.conn, occasion.rt, None, facts, outcomes)


def _request(occasion: Occasion) -> RequestRow:
    if occasion.sr is None:
        raise NoRequest("a notice about an SR was asked for a mail that made none")
    return occasion.sr


def _opened(occasion: Occasion) -> tuple[RequestRow, Opening]:
    sr = _request(occasion)
    if occasion.opening is None:
        raise NoRequest(f"{sr.public_id}: a notice of a new SR for an SR not opened now")
    return sr, occasion.opening


def _basics(occasion: Occasion, sr: RequestRow) -> dict[str, Any]:
    """The fields of `Basics` (outbound/contexts/requests.py) for this SR."""
    settings = occasion.rt.settings
    return {
        "sr_id": sr.public_id,
        "title": sr.title,
        "priority": sr.priority,
        "type": sr.type,
        "soc_phone": settings.soc_phone,
        "soc_address": settings.gateway_address,
    }
