"""Intake: receive(raw) -> Receipt. The whole inbound story of one mail, in one transaction.

1. parse the bytes (parsers.mail);  2. deduplicate (Message-ID and sender, else a content hash);
3. gather the facts: who sent it, which SR it answers;  4. triage.decide;  5. write the SR, the
message, its attachments, the Deadlines and the Deliveries;  6. commit, then enqueue the Deliveries.
A mail that cannot be processed is still stored, in quarantine: a mail once accepted is never lost.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from gateway import store
from gateway.arc import with_arc
from gateway.authentication import UNCHECKED, Verdict, check_smtp, from_trusted_header
from gateway.config import Settings
from gateway.db import transaction
from gateway.ids import is_our_message_id
from gateway.runtime import Runtime
from gateway.service_requests import APPLY, Applied
from gateway.store import Sender, Thread
from gateway.triage import Action, Decision, Facts, decide
from parsers.commands import Commands, read_commands
from parsers.dsn import failed_recipients
from parsers.mail import ParsedMail, parse
from parsers.replies import latest_reply
from parsers.signals import (
    PriorityRequest,
    asks_for_escalation,
    automatic_reason,
    bounce_reason,
    detect_language,
    is_reply,
    requested_priority,
    sr_tokens,
    verification_reason,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RawMail:
    """What an edge hands over: the bytes and the envelope."""

    data: bytes
    source: str  # smtp | imap
    mail_from: str | None = None  # SMTP envelope sender; None when read from a mailbox
    rcpt_tos: tuple[str, ...] = ()
    peer: str | None = None  # the connecting IP (SMTP)
    helo: str | None = None  # what the client said in EHLO/HELO (SMTP)


@dataclass(frozen=True)
class Receipt:
    """What became of a mail. `outcome` is an Action value, `duplicate` or `quarantined`."""

    outcome: str
    stored_id: int
    sr_id: str | None = None
    deliveries: tuple[tuple[int, str], ...] = field(default=())
    reason: str = ""

    @property
    def held(self) -> bool:
        return self.outcome in ("hold", "bounce", "quarantined")


class TemporaryFailure(Exception):
    """R6.6: a failure that may pass. The edge does not take the mail (SMTP 451, or it stays in
    the mailbox), so that it comes again; nothing is held or refused for such a reason."""


class StorageError(TemporaryFailure):
    """The database could not store the mail."""


class TemporaryAuthenticationFailure(TemporaryFailure):
    """DNS did not answer in time, and its answer could decide whether the sender is proven."""


def receive(raw: RawMail, rt: Runtime) -> Receipt:
    """Store, decide and act on one mail; enqueue its Deliveries after the commit (R6.2)."""
    mail = parse(raw.data)
    try:
        verdict, policy = authenticate(raw, mail, rt)
        proven = verdict.satisfies(policy)
        key = dedup_key(mail, proven=proven)
        receipt = _store(raw, mail, key, rt, verdict, proven)
    except IntegrityError as exc:  # the same mail, committed a moment ago by a parallel delivery
        receipt = _duplicate_of(key, rt, exc)
    except SQLAlchemyError as exc:
        log.error("storage failed for %s: %s", mail.message_id, exc)
        raise StorageError(str(exc)) from exc
    if receipt.deliveries:
        rt.outbox.enqueue(receipt.deliveries)
    log.info(
        "%s %s from %s: %s %s",
        raw.source,
        mail.message_id,
        mail.from_addr,
        receipt.outcome,
        receipt.sr_id or receipt.reason,
    )
    return receipt


def dedup_key(mail: ParsedMail, proven: bool = True) -> str:
    """Same Message-ID from the same sender, or (without one) the same content: the same mail.

    A copy whose sender was not proven never stands for one that was: a forger who guessed a
    Message-ID cannot have the genuine mail dropped as a duplicate of the forgery.
    """
    if mail.message_id:
        basis = f"id\0{mail.from_addr}\0{mail.message_id}"
    else:
        basis = f"content\0{mail.fingerprint}"
    if not proven:
        basis += "\0unproven"
    return hashlib.sha256(basis.encode("utf-8", "surrogatepass")).hexdigest()


def authenticate(raw: RawMail, mail: ParsedMail, rt: Runtime) -> tuple[Verdict, str]:
    """R6.4: the policy of the sender's domain, and the verdict of the checks it asks for.

    Done before the mail's transaction: DNS lookups never hold the database, and all of them
    together take at most GATEWAY_DNS_TIMEOUT. A verdict that DNS trouble left short of the
    policy raises TemporaryAuthenticationFailure (R6.6): the mail is asked for again.
    """
    settings = rt.settings
    with transaction(rt.sessions, readonly=True) as conn:
        policy = store.policy_for(
            conn, mail.from_addr, settings.auth_policy, settings.soc_auth_policy
        )
    domain = mail.from_addr.rpartition("@")[2]
    if policy == "none":
        return Verdict("none", domain), policy
    lookups = rt.resolver.lookups(settings.dns_timeout)
    if raw.source == "smtp" and raw.peer and raw.peer not in settings.trusted_relays:
        verdict = check_smtp(
            raw.data, domain, raw.peer, raw.helo or "", raw.mail_from or "", lookups
        )
    else:
        verdict = from_trusted_header(raw.data, domain, frozenset(settings.trusted_authserv_ids))
    if not verdict.satisfies(policy) and settings.trusted_arc_sealers:
        sealers = frozenset(settings.trusted_arc_sealers)
        verdict = with_arc(verdict, raw.data, policy, sealers, lookups)
    if verdict.uncertain(policy):
        log.warning("%s from %s: %s; to be tried again", mail.message_id, domain, verdict.summary())
        raise TemporaryAuthenticationFailure(verdict.summary())
    return verdict, policy


def _store(
    raw: RawMail, mail: ParsedMail, key: str, rt: Runtime, verdict: Verdict, proven: bool
) -> Receipt:
    try:
        reading = read(raw, mail, rt)
        with transaction(rt.sessions) as conn:
            existing = store.stored_id(conn, key)
            if existing is not None:
                return Receipt("duplicate", existing, reason="already stored")
            return _process(conn, raw, mail, key, rt, verdict, proven, reading)
    except SQLAlchemyError:
        raise
    except Exception as exc:  # a bug or a mail no rule foresaw: keep it, in quarantine
        log.exception("quarantined %s", mail.message_id)
        return _quarantine(raw, mail, key, rt, repr(exc))


def _quarantine(raw: RawMail, mail: ParsedMail, key: str, rt: Runtime, why: str) -> Receipt:
    """The processing transaction was rolled back; the raw mail is stored on its own."""
    with transaction(rt.sessions) as conn:
        existing = store.stored_id(conn, key)
        if existing is not None:
            return Receipt("duplicate", existing, reason="already stored")
        stored = add_stored(conn, raw, mail, key, rt.now(), "quarantined", why[:2000])
    return Receipt("quarantined", stored, reason=why[:200])


def _duplicate_of(key: str, rt: Runtime, exc: IntegrityError) -> Receipt:
    with transaction(rt.sessions) as conn:
        existing = store.stored_id(conn, key)
    if existing is None:
        raise StorageError(str(exc)) from exc
    return Receipt("duplicate", existing, reason="already stored")


def _process(
    conn: Connection,
    raw: RawMail,
    mail: ParsedMail,
    key: str,
    rt: Runtime,
    verdict: Verdict,
    proven: bool,
    reading: Reading,
    again: int | None = None,
) -> Receipt:
    """Decide and act; `again` is the id of a stored mail run once more, whose row is kept."""
    if mail.defects and mail.defects[0].startswith("unparsable"):
        # Beyond the parser's limits (R6.3): kept whole, in quarantine, for `quarantine retry`.
        stored = _keep(conn, raw, mail, key, rt.now(), "quarantined", mail.defects[0], None, again)
        return Receipt("quarantined", stored, reason=mail.defects[0])
    facts = gather(conn, raw, mail, rt, verdict, proven, reading)
    decision = decide(facts)
    status = {Action.HOLD: "review", Action.BOUNCE: "bounce"}.get(decision.action, "accepted")
    reason = _reason(decision, facts)
    record = verdict.as_record()
    stored = _keep(conn, raw, mail, key, facts.now, status, reason, record, again)
    applied: Applied = APPLY[decision.action](conn, rt, facts, decision, stored)
    return Receipt(decision.action.value, stored, applied.sr_public_id, applied.deliveries, reason)


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
    escalation_words: bool
    verification: str | None


def read(raw: RawMail, mail: ParsedMail, rt: Runtime) -> Reading:
    reply = latest_reply(mail.text) if is_reply(mail) else mail.text
    return Reading(
        reply=reply,
        recipients=frozenset(a.lower() for a in (*raw.rcpt_tos, *mail.to, *mail.cc)),
        automatic=automatic_reason(mail),
        bounce=bounce_reason(mail, raw.mail_from),
        looped=_looped(mail, rt),
        requested=requested_priority(mail.subject, reply),
        language=detect_language(f"{mail.subject}\n{reply}"),
        escalation_words=asks_for_escalation(mail.subject, reply),
        verification=verification_reason(mail.subject, reply),
    )


def gather(
    conn: Connection,
    raw: RawMail,
    mail: ParsedMail,
    rt: Runtime,
    verdict: Verdict = UNCHECKED,
    proven: bool = True,
    reading: Reading | None = None,
) -> Facts:
    """Add what the database knows: the sender in the directory, the SR the mail answers."""
    reading = reading or read(raw, mail, rt)
    now = rt.now()
    sender = store.sender_of(conn, mail.from_addr)
    thread, foreign = _thread(conn, mail, sender, rt)
    reply = reading.reply
    # R2.2: commands are read from SOC staff only; from anyone else they are ordinary text.
    commands = read_commands(reply) if sender.kind == "soc" else Commands((), (), reply)
    settings = rt.settings
    escalation_asked = sender.kind == "contact" and (
        settings.escalation_address.lower() in reading.recipients or reading.escalation_words
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
        requested=reading.requested,
        noticed_recently=sender.kind == "unknown" and _noticed(conn, mail.from_addr, now, rt),
        reply_text=reply,
        language=reading.language,
        commands=commands,
        to_note_address=settings.note_address.lower() in reading.recipients,
        escalation_asked=escalation_asked,
        verdict=verdict,
        authenticated=proven,
        verification=reading.verification if sender.kind == "unknown" else None,
        autoreply_allowed=_autoreply_allowed(conn, mail.from_addr, thread, now, settings),
    )


def _autoreply_allowed(
    conn: Connection, address: str, thread: Thread | None, now: datetime, settings: Settings
) -> bool:
    """R6.1: under the per-address (hour and day) and per-SR (hour) limits of automatic replies."""
    hour, day = store.autoreplies_to(
        conn, address, now - timedelta(hours=1), now - timedelta(days=1)
    )
    if hour >= settings.autoreply_per_hour or day >= settings.autoreply_per_day:
        return False
    if thread is None:
        return True
    return store.autoreplies_about(conn, thread.sr_id, now - timedelta(hours=1)) < (
        settings.autoreply_per_sr_hour
    )


def _noticed(conn: Connection, address: str, now: datetime, rt: Runtime) -> bool:
    since = now - timedelta(hours=rt.settings.notice_interval_hours)
    return bool(address) and store.notices_since(conn, address, "sender_unregistered", since) > 0


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
        *store.requests_named(conn, sr_tokens(mail.subject)),
        *store.requests_answered(conn, references),
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


def _reason(decision: Decision, facts: Facts) -> str:
    limited = not facts.autoreply_allowed and decision.action not in (Action.HOLD, Action.BOUNCE)
    parts = [
        facts.bounce or facts.automatic or "",
        facts.verdict.summary() if not facts.authenticated else "",
        facts.verification or "",
        "automatic-reply limit reached: none sent" if limited else "",
        "named an SR the sender does not belong to" if facts.foreign_thread else "",
    ]
    detail = "; ".join(part for part in parts if part)
    return f"{decision.rule} ({detail})" if detail else decision.rule


def add_stored(
    conn: Connection,
    raw: RawMail,
    mail: ParsedMail,
    key: str,
    now: datetime,
    status: str,
    reason: str,
    authentication: dict[str, Any] | None = None,
) -> int:
    return store.add_stored(
        conn,
        dedup_key=key,
        message_id=mail.message_id,
        source=raw.source,
        mail_from=raw.mail_from,
        peer=raw.peer,
        helo=(raw.helo or "")[:255] or None,
        rcpt_tos=list(raw.rcpt_tos),
        sender=mail.from_addr[:320],
        subject=mail.subject,
        size=len(raw.data),
        data=raw.data,
        status=status,
        reason=reason,
        received_at=now,
        authentication=authentication,
        failed_recipients=failed_recipients(mail.report),
    )


def _keep(
    conn: Connection,
    raw: RawMail,
    mail: ParsedMail,
    key: str,
    now: datetime,
    status: str,
    reason: str,
    authentication: dict[str, Any] | None,
    again: int | None,
) -> int:
    """The mail's stored row: a new one, or for a mail run again its own, with today's outcome
    (what refers to it, such as the notice a held mail got, keeps referring to it)."""
    if again is None:
        return add_stored(conn, raw, mail, key, now, status, reason, authentication)
    conn.execute(
        store.STORED.update()
        .where(store.STORED.c.id == again)
        .values(dedup_key=key, status=status, reason=reason, authentication=authentication)
    )
    return again


class NotHeld(ValueError):
    """Only a held mail can be released or dismissed, and only a quarantined one retried."""


NotQuarantined = NotHeld  # the name `quarantine retry` knows it by
HELD = ("review", "bounce", "quarantined")  # what `review dismiss` takes
# What may be run through intake again: the statuses it takes, and whether a mail that would be
# held again stays as it was (release) or is stored with its new outcome (retry).
AGAIN = {
    "quarantined": (("quarantined",), False),
    "held": (("review", "bounce", "dismissed"), True),
}
# A stored mail's status as the outcome of a run that changed nothing.
_OUTCOME = {"review": "hold", "dismissed": "hold", "bounce": "bounce", "quarantined": "quarantined"}


def retry_quarantined(stored_id: int, rt: Runtime) -> Receipt:
    """R6.3: run a quarantined mail through intake again (after a fix, or with new limits)."""
    return _again(stored_id, rt, "quarantined")


def release_held(stored_id: int, rt: Runtime) -> Receipt:
    """R1.8, R6.4: run a held mail through intake again, with today's directory and policies.

    A mail that would be held again stays as it was (nobody is sent anything); the receipt says
    why, under the mail's own id.
    """
    return _again(stored_id, rt, "held")


def dismiss_held(stored_id: int, rt: Runtime) -> None:
    """An administrator has looked at a held mail and let it be: status `dismissed`, kept."""
    with transaction(rt.sessions) as conn:
        row = store.stored_row(conn, stored_id)
        if row is None or row.status not in HELD:
            raise NotHeld(f"no held mail {stored_id}")
        conn.execute(
            store.STORED.update().where(store.STORED.c.id == stored_id).values(status="dismissed")
        )


class _Unchanged(Exception):
    def __init__(self, receipt: Receipt) -> None:
        self.receipt = receipt


def _again(stored_id: int, rt: Runtime, kind: str) -> Receipt:
    """Intake once more for a stored mail: in one transaction the stored copy makes way for the
    processed one (under the same id); if processing fails again (or a released mail would be held
    again), nothing changes. DNS trouble raises TemporaryAuthenticationFailure, nothing changed.
    """
    statuses, keep_if_held = AGAIN[kind]
    with transaction(rt.sessions) as conn:
        row = store.stored_row(conn, stored_id)
    if row is None or row.status not in statuses:
        raise NotHeld(f"no {kind} mail {stored_id}")
    raw = RawMail(
        bytes(row.data), row.source, row.mail_from, tuple(row.rcpt_tos), row.peer, row.helo
    )
    mail = parse(raw.data)
    verdict, policy = authenticate(raw, mail, rt)
    proven = verdict.satisfies(policy)
    key = dedup_key(mail, proven=proven)
    try:
        reading = read(raw, mail, rt)
        with transaction(rt.sessions) as conn:
            receipt = _process(conn, raw, mail, key, rt, verdict, proven, reading, stored_id)
            if keep_if_held and receipt.held:
                raise _Unchanged(receipt)  # rolls the transaction back
    except _Unchanged as unchanged:
        return replace(unchanged.receipt, stored_id=stored_id, sr_id=None, deliveries=())
    except IntegrityError:
        return Receipt("duplicate", stored_id, reason="the same mail was stored since; kept here")
    except SQLAlchemyError as exc:
        raise StorageError(str(exc)) from exc
    except Exception as exc:  # the bug is still there: the stored copy stays as it was
        log.exception("mail %s could not be run through intake again", stored_id)
        return Receipt(_OUTCOME[row.status], stored_id, reason=f"retry failed: {exc!r}"[:200])
    if receipt.deliveries:
        rt.outbox.enqueue(receipt.deliveries)
    return receipt
