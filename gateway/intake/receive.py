"""Steps 4 to 9 of one mail: receive(raw) -> Receipt, in one transaction.

Parse (step 3, parsers/mail.py), check the sender (4), store it once (dedup_key), read and
gather the facts (5), decide (6, triage.py), carry the decision out (7 and 8, requests/), commit,
then hand the Deliveries to the broker (9). A mail that cannot be processed is still stored, in
quarantine: a mail once accepted is never lost. Held and quarantined mail runs the same path
again when an admin releases or retries it.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from gateway.core.runtime import Runtime
from gateway.core.vocabulary import StoredStatus
from gateway.directory.queries import policy_for
from gateway.intake.arc import with_arc
from gateway.intake.authentication import Verdict, check_smtp, from_trusted_header
from gateway.intake.queries import NewStoredMail, add_stored, set_outcome, stored_id
from gateway.intake.reading import Reading, gather, read
from gateway.intake.receipts import (
    RawMail,
    Receipt,
    StorageError,
    TemporaryAuthenticationFailure,
    TemporaryFailure,
)
from gateway.intake.triage import decide, reason_for
from gateway.observe import committers, metrics
from gateway.requests.decision import Action
from gateway.requests.opening import APPLY
from gateway.storage.db import transaction
from parsers.dsn import failed_recipients
from parsers.mail import ParsedMail, parse

log = logging.getLogger(__name__)
STATUS = {  # else accepted
    Action.HOLD: StoredStatus.review,
    Action.BOUNCE: StoredStatus.bounce,
    Action.COMPLAINT: StoredStatus.review,  # RFC 5965: a person reads an abuse report
}
# A stored mail's status as the outcome of a run that changed nothing.
_OUTCOME = {
    StoredStatus.review: "hold",
    StoredStatus.dismissed: "hold",
    StoredStatus.bounce: "bounce",
    StoredStatus.quarantined: "quarantined",
}


@dataclass(frozen=True)
class Again:
    """A stored mail run through intake once more: its row is kept and given the new outcome."""

    stored_id: int
    status: StoredStatus  # what it was, and stays if the run fails
    keep_if_held: bool  # a release that would be held again changes nothing


def receive(raw: RawMail, rt: Runtime) -> Receipt:
    """Store, decide and act on one mail; enqueue its Deliveries after the commit (R6.2)."""
    started = time.perf_counter()
    mail = parse(raw.data)
    receipt = run(raw, mail, rt)
    seconds = time.perf_counter() - started
    metrics.received(raw.source, receipt.outcome, seconds)
    # A mail without a Message-ID is named by its stored row, never "None"
    message_id = mail.message_id or f"stored:{receipt.stored_id}"
    log.info(
        "%s %s from %s: %s %s in %.0f ms",
        raw.source,
        message_id,
        mail.from_addr,
        receipt.outcome,
        receipt.sr_id or receipt.reason,
        seconds * 1000,
        extra={
            "event": "intake",
            "path": raw.source,
            "message_id": message_id,
            "stored_id": receipt.stored_id,
            "sr_id": receipt.sr_id,
            "outcome": receipt.outcome,
            "ms": round(seconds * 1000, 1),
        },
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
    """Step 4, R6.4: the policy of the sender's domain, and the verdict of the checks it asks for.

    Done before the mail's transaction: DNS lookups never hold the database, and all of them
    together take at most GATEWAY_DNS_TIMEOUT. A verdict that DNS trouble left short of the
    policy raises TemporaryAuthenticationFailure (R6.6): the mail is asked for again.
    """
    settings = rt.settings
    # SUS admins approve subscriptions by mail: their address must be as genuine as the SOC's
    admin = mail.from_addr in settings.admin_addresses
    others = settings.soc_auth_policy if admin else settings.auth_policy
    with transaction(rt.sessions, readonly=True) as conn:
        policy = policy_for(conn, mail.from_addr, others, settings.soc_auth_policy)
    domain = mail.from_addr.rpartition("@")[2]
    if policy == "none":
        metrics.AUTHENTICATION.labels(result="unchecked", source="none").inc()
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
        metrics.AUTHENTICATION.labels(result="deferred", source=verdict.source).inc()
        log.warning("%s from %s: %s; to be tried again", mail.message_id, domain, verdict.summary())
        raise TemporaryAuthenticationFailure(verdict.summary())
    result = "pass" if verdict.satisfies(policy) else "fail"
    metrics.AUTHENTICATION.labels(result=result, source=verdict.source).inc()
    return verdict, policy


class _Unchanged(Exception):
    def __init__(self, receipt: Receipt) -> None:
        self.receipt = receipt


def run(raw: RawMail, mail: ParsedMail, rt: Runtime, again: Again | None = None) -> Receipt:
    """The one path of every mail, new or run again; enqueues its Deliveries after the commit."""
    key = ""
    try:
        verdict, policy = authenticate(raw, mail, rt)
        proven = verdict.satisfies(policy)
        key = dedup_key(mail, proven=proven)
        reading = read(raw, mail, rt)

        def store(conn: Connection) -> Receipt:
            existing = stored_id(conn, key) if again is None else None
            if existing is not None:
                return Receipt("duplicate", existing, reason="already stored")
            receipt = _process(conn, raw, mail, key, rt, verdict, proven, reading, again)
            if again is not None and again.keep_if_held and receipt.held:
                raise _Unchanged(receipt)  # rolls the mail's savepoint back
            return receipt

        # with the mails that arrive meanwhile, in one transaction (committer.py)
        receipt = committers.intake(rt.sessions).write(store)
    except _Unchanged as unchanged:
        return replace(unchanged.receipt, sr_id=None, deliveries=())
    except IntegrityError as exc:  # the same mail, committed a moment ago by a parallel delivery
        receipt = _duplicate_of(key, rt, exc, again)
    except TemporaryFailure:
        raise
    except SQLAlchemyError as exc:
        log.error("storage failed for %s: %s", mail.message_id, exc)
        raise StorageError(str(exc)) from exc
    except Exception as exc:  # a bug or a mail no rule foresaw: keep it, in quarantine
        receipt = _unprocessed(raw, mail, key, rt, exc, again)
    if receipt.deliveries:
        rt.outbox.enqueue(receipt.deliveries)
    return receipt


def _process(
    conn: Connection,
    raw: RawMail,
    mail: ParsedMail,
    key: str,
    rt: Runtime,
    verdict: Verdict,
    proven: bool,
    reading: Reading,
    again: Again | None,
) -> Receipt:
    """Steps 5 to 8: gather, decide, keep the mail with its outcome, carry the decision out."""
    if mail.defects and mail.defects[0].startswith("unparsable"):
        # Beyond the parser's limits (R6.3): kept whole, in quarantine, for `quarantine retry`.
        reason = mail.defects[0]
        stored = _keep(conn, raw, mail, key, rt, StoredStatus.quarantined, reason, None, again)
        return Receipt("quarantined", stored, reason=reason)
    facts = gather(conn, mail, rt, reading, proven)
    decision = decide(facts)
    status = STATUS.get(decision.action, StoredStatus.accepted)
    reason = reason_for(decision, facts, verdict)
    stored = _keep(conn, raw, mail, key, rt, status, reason, verdict.as_record(), again)
    applied = APPLY[decision.action](conn, rt, facts, decision, stored)
    return Receipt(decision.action.value, stored, applied.sr_public_id, applied.deliveries, reason)


def _keep(
    conn: Connection,
    raw: RawMail,
    mail: ParsedMail,
    key: str,
    rt: Runtime,
    status: StoredStatus,
    reason: str,
    authentication: dict[str, Any] | None,
    again: Again | None,
) -> int:
    """The mail's stored row: a new one, or for a mail run again its own, with today's outcome
    (what refers to it, such as the notice a held mail got, keeps referring to it)."""
    if again is not None:
        set_outcome(
            conn,
            again.stored_id,
            status,
            reason=reason,
            dedup_key=key,
            authentication=authentication,
        )
        return again.stored_id
    new = NewStoredMail(
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
        received_at=rt.now(),
        authentication=authentication,
        failed_recipients=failed_recipients(mail.report),
    )
    return add_stored(conn, new)


def _duplicate_of(key: str, rt: Runtime, exc: IntegrityError, again: Again | None) -> Receipt:
    if again is not None:
        reason = "the same mail was stored since; kept here"
        return Receipt("duplicate", again.stored_id, reason=reason)
    with transaction(rt.sessions) as conn:
        existing = stored_id(conn, key)
    if existing is None:
        raise StorageError(str(exc)) from exc
    return Receipt("duplicate", existing, reason="already stored")


def _unprocessed(
    raw: RawMail, mail: ParsedMail, key: str, rt: Runtime, exc: Exception, again: Again | None
) -> Receipt:
    """R6.3: the processing transaction was rolled back. A new mail is stored on its own, in
    quarantine; a mail run again stays as it was."""
    if again is not None:  # the bug is still there
        log.exception("mail %s could not be run through intake again", again.stored_id)
        reason = f"retry failed: {exc!r}"[:200]
        return Receipt(_OUTCOME[again.status], again.stored_id, reason=reason)
    log.exception("quarantined %s", mail.message_id)
    why = repr(exc)
    try:
        with transaction(rt.sessions) as conn:
            existing = stored_id(conn, key)
            if existing is not None:
                return Receipt("duplicate", existing, reason="already stored")
            quarantined = StoredStatus.quarantined
            stored = _keep(conn, raw, mail, key, rt, quarantined, why[:2000], None, None)
    except SQLAlchemyError as error:
        raise StorageError(str(error)) from error
    return Receipt("quarantined", stored, reason=why[:200])
