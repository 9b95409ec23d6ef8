"""The mails a decision asks for, written as Delivery rows in the same transaction (the outbox)."""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from gateway import store
from gateway.hours import Calendar
from gateway.ids import outgoing_message_id
from gateway.outbox import MAIL_QUEUE
from gateway.runtime import Runtime
from parsers.mail import ParsedMail, is_tnef

MAX_REFERENCES = 20  # RFC 5322 §3.6.4 lets References grow; long chains are trimmed from the front
# RFC 5322 §3.2.3 atext: what a local part may hold without quoting.
_ATEXT = frozenset(string.ascii_letters + string.digits + "!#$%&'*+/=?^_`{|}~-")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")  # RFC 1035 §2.3.1, RFC 5890 A-labels


@dataclass(frozen=True)
class Language:
    """The language a customer-facing mail goes out in (R1.11, §3.2)."""

    code: str
    wanted: str  # the customer's language, when the mail goes out in English outside hours
    outside_hours: bool


def addressable(address: str) -> bool:
    """An address a notice may go to: a plain mailbox, `dot-atom@domain` (RFC 5321 §4.1.2).

    Taken from a mail, an address may be anything its sender wrote: a quoted local part
    (`"system administrator"@host`), spaces, control characters, an IP literal, a bare host, parts
    beyond RFC 5321 §4.5.3.1's limits. A notice to it would bounce or go astray: none is written.
    Local parts in UTF-8 (RFC 6531) and internationalised domains (RFC 5890) are mailboxes too.
    """
    local, at, domain = address.rpartition("@")
    if not at or len(address.encode("utf-8", "surrogatepass")) > 254:
        return False
    return _plain_local(local) and _plain_domain(domain)


def _plain_local(local: str) -> bool:
    if not 0 < len(local.encode("utf-8", "surrogatepass")) <= 64:
        return False
    return all(
        atom and all(ch in _ATEXT or (ord(ch) > 127 and ch.isprintable()) for ch in atom)
        for atom in local.split(".")
    )


def _plain_domain(domain: str) -> bool:
    try:
        labels = [label.encode("idna").decode("ascii").lower() for label in domain.split(".")]
    except UnicodeError:  # an empty label, or one no A-label can spell
        return False
    return (
        len(labels) >= 2
        and len(".".join(labels)) <= 253
        and all(_LABEL.match(label) for label in labels)
        and not labels[-1].isdigit()  # 192.0.2.1 is no domain; a top-level domain has a letter
    )


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
    context: dict[str, Any],
    now: datetime,
    language: str = "en",
    audience: str = "customer",
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

    Returns (Delivery id, queue) for the outbox to enqueue after the commit.
    """
    if mail is not None:
        in_reply_to = mail.message_id
        references = [*mail.references, mail.message_id] if mail.message_id else []
    message_id = outgoing_message_id(
        label or template.replace("_", "-"), rt.settings.domain, dict(rt.keys)
    )
    delivery_id = store.add_delivery(
        conn,
        sr_id=sr_id,
        raw_mail_id=raw_mail_id,
        template=template,
        audience=audience,
        language=language,
        recipient=recipient,
        context=context,
        message_id=message_id,
        in_reply_to=in_reply_to,
        references=" ".join(list(references)[-MAX_REFERENCES:]),
        auto_submitted=auto_submitted,
        queue=queue,
        status="pending",
        attempts=0,
        next_attempt_at=now,
        enqueued_at=now,
        claimed_at=None,
        sent_at=None,
        last_error="",
        created_at=now,
    )
    if sr_id is not None:
        store.add_thread_ref(conn, message_id, sr_id)
    return delivery_id, queue


def sendable_files(conn: Connection, message: int, limit: int | None = None) -> list[int]:
    """The ids of a stored message's attachments to send on with a mail: all but Outlook's
    winmail.dat container (the files taken out of it go instead), in order, while their sizes
    add up to at most `limit` bytes."""
    chosen, total = [], 0
    for attachment_id, name, kind, size in store.attachment_list(conn, message):
        if is_tnef(name, kind):
            continue
        if limit is not None and total + size > limit:
            break
        chosen.append(attachment_id)
        total += size
    return chosen


def alert(
    conn: Connection,
    rt: Runtime,
    *,
    template: str,
    recipient: str,
    context: dict[str, Any],
    now: datetime,
    audience: str = "soc",
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
    context: dict[str, Any],
    now: datetime,
    language: str,
    auto_submitted: str = "auto-replied",
) -> tuple[int, str]:
    """A mail that lands in the customer's own thread of an SR: In-Reply-To their newest mail,
    References the mails they sent and received on it (RFC 5322 §3.6.4)."""
    latest, thread = store.thread_of(conn, sr_id)
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
