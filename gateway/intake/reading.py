"""Step 5: what a mail says and what the database knows of it: the newest part of its text, its
automatic-mail signs, the priority it asks for, its language (read before the transaction); then
the sender in the directory and the SR it answers (the Facts triage decides on)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection

from gateway.core.ids import is_our_message_id
from gateway.core.runtime import Runtime
from gateway.core.settings import Settings
from gateway.directory.queries import Sender, sender_of
from gateway.intake.queries import (
    autoreplies_about,
    autoreplies_to,
    notices_since,
    requests_answered,
    requests_named,
)
from gateway.intake.receipts import RawMail
from gateway.requests.decision import Facts, Thread
from gateway.sus import mail as sus_mail
from parsers.automatic import automatic_reason, bounce_reason
from parsers.commands import Commands, read_commands
from parsers.language import detect_language
from parsers.mail import ParsedMail
from parsers.replies import latest_reply
from parsers.returns import Returned, read_returned
from parsers.signals import (
    PriorityRequest,
    added_to_title,
    asks_for_escalation,
    is_reply,
    requested_priority,
    sr_tokens,
    verification_reason,
)


@dataclass(frozen=True)
class Reading:
    """What the mail itself says, read before its transaction: text work never holds the lock."""

    reply: str  # the newest part, quoted history and signature removed (replies only)
    recipients: frozenset[str]
    automatic: str | None
    bounce: str | None
    looped: bool
    requested: PriorityRequest | None
    language: str | None
    escalation_words: bool  # in its first line, or in a subject that repeats no SR's title
    verification: str | None
    returned: Returned | None = None  # a bounce's or report's account of what it returns (R4.4)


def read(raw: RawMail, mail: ParsedMail, rt: Runtime) -> Reading:
    reply = latest_reply(mail.text) if is_reply(mail) else mail.text
    bounce = bounce_reason(mail, raw.mail_from)
    reported = bounce is not None or mail.report is not None
    return Reading(
        reply=reply,
        recipients=frozenset(a.lower() for a in (*raw.rcpt_tos, *mail.to, *mail.cc)),
        automatic=automatic_reason(mail),
        bounce=bounce,
        looped=_looped(mail, rt),
        requested=requested_priority(mail.subject, reply),
        language=detect_language(f"{mail.subject}\n{reply}"),
        escalation_words=asks_for_escalation(mail.subject, reply),
        verification=verification_reason(mail.subject, reply),
        returned=read_returned(raw.data) if reported else None,
    )


def gather(
    conn: Connection,
    mail: ParsedMail,
    rt: Runtime,
    reading: Reading,
    proven: bool = True,
) -> Facts:
    """Add what the database knows: the sender in the directory, the SR the mail answers."""
    now = rt.now()
    sender = sender_of(conn, mail.from_addr)
    thread, foreign = _thread(conn, mail, sender, rt)
    reply = reading.reply
    # R2.2: commands are read from SOC staff only; from anyone else they are ordinary text.
    commands = read_commands(reply) if sender.kind == "soc" else Commands((), (), reply)
    settings = rt.settings
    # A reply's subject repeats its SR's title: only what it adds may ask to escalate, or for
    # a priority ("Re: [SR-…] PRIORITY 1: cluster down" asks for nothing new)
    words, requested = reading.escalation_words, reading.requested
    if thread is not None and thread.title:
        if words:
            words = asks_for_escalation(mail.subject, reply, thread.title)
        if requested:
            requested = requested_priority(added_to_title(mail.subject, thread.title), reply)
    escalation_asked = sender.kind == "contact" and (
        settings.escalation_address.lower() in reading.recipients or words
    )
    return Facts(
        mail=mail,
        now=now,
        sender=sender,
        thread=thread,
        foreign_thread=foreign,
        automatic=reading.automatic,
        bounce=reading.bounce,
        looped=reading.looped,
        requested=requested,
        noticed_recently=sender.kind == "unknown" and _noticed(conn, mail.from_addr, now, rt),
        reply_text=reply,
        language=reading.language,
        commands=commands,
        to_note_address=settings.note_address.lower() in reading.recipients,
        escalation_asked=escalation_asked,
        authenticated=proven,
        verification=reading.verification if sender.kind == "unknown" else None,
        autoreply_allowed=_autoreply_allowed(conn, mail.from_addr, thread, now, settings),
        sus=sus_mail.gather(
            conn,
            sus_mail.Seen(mail, sender.kind, reading.recipients, reply, reading.returned),
            settings,
            rt.keys,
        ),
    )


def _autoreply_allowed(
    conn: Connection, address: str, thread: Thread | None, now: datetime, settings: Settings
) -> bool:
    """R6.1: under the per-address (hour and day) and per-SR (hour) limits of automatic replies."""
    hour, day = autoreplies_to(conn, address, now - timedelta(hours=1), now - timedelta(days=1))
    if hour >= settings.autoreply_per_hour or day >= settings.autoreply_per_day:
        return False
    if thread is None:
        return True
    return autoreplies_about(conn, thread.sr_id, now - timedelta(hours=1)) < (
        settings.autoreply_per_sr_hour
    )


def _noticed(conn: Connection, address: str, now: datetime, rt: Runtime) -> bool:
    since = now - timedelta(hours=rt.settings.notice_interval_hours)
    return bool(address) and notices_since(conn, address, "sender_unregistered", since) > 0


def _thread(
    conn: Connection, mail: ParsedMail, sender: Sender, rt: Runtime
) -> tuple[Thread | None, bool]:
    """The SR named by token, else by In-Reply-To/References; kept only if the sender belongs.

    A Message-ID in our own domain counts only if its HMAC verifies (a forged one is ignored).
    """
    ours = f"@{rt.settings.domain}>"
    keys = dict(rt.keys)
    references = [m for m in mail.thread_ids if not m.endswith(ours) or is_our_message_id(m, keys)]
    candidates = [
        *requests_named(conn, sr_tokens(mail.subject)),
        *requests_answered(conn, references),
    ]
    for sr in candidates:
        if sender.kind == "soc" or sr.customer_id == sender.customer_id:
            return sr, False
    return None, bool(candidates)


def _looped(mail: ParsedMail, rt: Runtime) -> bool:
    """The gateway's own mail coming back: its From, its signed Message-ID, or its X-Loop."""
    ours = rt.settings.gateway_address.lower()
    if mail.from_addr in (ours, *rt.settings.intake_addresses):
        return True
    if ours in mail.headers.get("x-loop", "").lower():
        return True
    return bool(mail.message_id and is_our_message_id(mail.message_id, dict(rt.keys)))
