"""Step 8: the mails a decision asks for, as Delivery rows written in its transaction (outbox)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from gateway.core.hours import Calendar
from gateway.core.ids import outgoing_message_id
from gateway.core.runtime import Runtime
from gateway.core.vocabulary import Audience
from gateway.outbound.contexts import Context, checked
from gateway.outbound.outbox import MAIL_QUEUE
from gateway.outbound.queries import (
    NewDelivery,
    add_delivery,
    add_thread_ref,
    attachment_list,
    thread_of,
)
from parsers.mail import ParsedMail
from parsers.parts import is_tnef

MAX_REFERENCES = 20  # RFC 5322 §3.6.4 lets References grow; long chains are trimmed from the front


@dataclass(frozen=True)
class Language:
    """The language a customer-facing mail goes out in (R1.11, §3.2)."""

    code: str
    wanted: str  # the customer's language, when the mail goes out in English outside hours
    outside_hours: bool


def reply_language(wanted: str, calendar: Calendar, now: datetime) -> Language:
    """The customer's language during Business Hours – Standard, English outside them."""
    if wanted == "en" or calendar.is_working_time(now):
        return Language(wanted, wanted, False)
    return Language("en", wanted, True)


def answer(
    conn: Connection,
    rt: Runtime,
    *,
    template: str,
    recipient: str,
    mail: ParsedMail | None,
    context: Context,
    now: datetime,
    language: str = "en",
    audience: Audience = Audience.customer,
    sr_id: int | None = None,
    label: str = "",
    raw_mail_id: int | None = None,
    auto_submitted: str = "auto-replied",
    in_reply_to: str | None = None,
    references: Sequence[str] = (),
    queue: str = MAIL_QUEUE,
) -> tuple[int, str]:
    """A Delivery that threads under `mail` (or `in_reply_to` and `references`) in the
    recipient's client (RFC 5322 §3.6.4). `auto_submitted=""` marks mail a person wrote.

    Returns (Delivery id, queue) for the outbox to enqueue after the commit. A context that is not
    the template's own raises `WrongContext` (contexts.py), before anything is written.
    """
    fields = checked(template, audience, context)
    if mail is not None:
        in_reply_to = mail.message_id
        references = [*mail.references, mail.message_id] if mail.message_id else []
    message_id = outgoing_message_id(
        label or template.replace("_", "-"), rt.settings.domain, dict(rt.keys)
    )
    delivery = NewDelivery(
        sr_id=sr_id,
        raw_mail_id=raw_mail_id,
        template=template,
        audience=audience,
        language=language,
        recipient=recipient,
        context=fields,
        message_id=message_id,
        in_reply_to=in_reply_to,
        references=" ".join(list(references)[-MAX_REFERENCES:]),
        auto_submitted=auto_submitted,
        queue=queue,
        next_attempt_at=now,
        enqueued_at=now,
        created_at=now,
    )
    delivery_id = add_delivery(conn, delivery)
    if sr_id is not None:
        add_thread_ref(conn, message_id, sr_id)
    return delivery_id, queue


def sendable_files(conn: Connection, message: int, limit: int | None = None) -> list[int]:
    """The ids of a stored message's attachments to send on with a mail: all but Outlook's
    winmail.dat container (the files taken out of it go instead), in order, while their sizes
    add up to at most `limit` bytes."""
    chosen, total = [], 0
    for file in attachment_list(conn, message):
        if is_tnef(file.filename, file.content_type):
            continue
        if limit is not None and total + file.size > limit:
            break
        chosen.append(file.id)
        total += file.size
    return chosen


def alert(
    conn: Connection,
    rt: Runtime,
    *,
    template: str,
    recipient: str,
    context: Context,
    now: datetime,
    audience: Audience = Audience.soc,
    sr_id: int | None = None,
    label: str = "",
    raw_mail_id: int | None = None,
    queue: str = MAIL_QUEUE,
) -> tuple[int, str]:
    """An automatic mail to the SOC or to staff (RFC 3834: Auto-Submitted: auto-generated)."""
    return answer(
        conn,
        rt,
        template=template,
        recipient=recipient,
        mail=None,
        context=context,
        now=now,
        audience=audience,
        sr_id=sr_id,
        label=label,
        raw_mail_id=raw_mail_id,
        auto_submitted="auto-generated",
        queue=queue,
    )


def in_customer_thread(
    conn: Connection,
    rt: Runtime,
    *,
    sr_id: int,
    label: str,
    template: str,
    recipient: str,
    context: Context,
    now: datetime,
    language: str,
    auto_submitted: str = "auto-replied",
) -> tuple[int, str]:
    """A mail that lands in the customer's own thread of an SR: In-Reply-To their newest mail,
    References the mails they sent and received on it (RFC 5322 §3.6.4)."""
    latest, thread = thread_of(conn, sr_id)
    return answer(
        conn,
        rt,
        template=template,
        recipient=recipient,
        mail=None,
        context=context,
        now=now,
        language=language,
        sr_id=sr_id,
        label=label,
        auto_submitted=auto_submitted,
        in_reply_to=latest,
        references=thread,
    )
