"""R4.4: a bounce or a complaint matched to its Delivery and subscriber, and what follows.

A bounce names its Delivery by the VERP return path it came back to (gateway/sus/verp.py,
signed: nobody can make the gateway count a bounce against another subscriber), else by the
returned mail's Message-ID (signed too); it is then about that Delivery's recipient alone. One
that names no Delivery is about the recipients flufl.bounce found failed for good
(parsers/dsn.py). A permanent failure is kept with the contact (`gateway contacts list` shows
it) and, if it named its Delivery, scores a hard bounce on its subscriptions
(gateway/sus/scores.py); one only delayed
(RFC 3464 `Action: delayed`, an MTA's warning) is kept and never counted. An ARF complaint
(RFC 5965) about a bulletin unsubscribes its recipient from that product at once. Nobody is
ever answered (R6.1).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from gateway.core.ids import is_our_message_id
from gateway.core.runtime import Runtime
from gateway.sus import bounce_queries, changes, queries, scores, verp
from gateway.sus.bounce_queries import DeliveryRef, NewBounce
from gateway.sus.queries import ContactRow
from gateway.sus.vocabulary import BOUNCES, Change, How, SubscriptionState
from parsers.returns import Returned

Deliveries = list[tuple[int, str]]


@dataclass(frozen=True)
class Returning:
    """A bounce or a complaint, as this room needs it."""

    stored: int  # the stored mail (raw_mails)
    now: datetime
    message_id: str | None
    reason: str  # why it is one (parsers/dsn.py)
    return_paths: tuple[str, ...]  # VERP addresses it came to or quotes (not yet verified)
    failed: tuple[str, ...]  # recipients failed for good, as flufl.bounce reads them
    delayed: tuple[str, ...]  # recipients only delayed, as flufl.bounce reads them
    returned: Returned  # its DSN's statuses, the returned mail's Message-IDs


@dataclass(frozen=True)
class _Target:
    contact: ContactRow
    address: str  # as the bounce or the Delivery names it
    delivery: DeliveryRef | None
    source: str  # verp | dsn


def bounce(conn: Connection, rt: Runtime, mail: Returning) -> Deliveries:
    """Each contact the bounce is about: kept, and scored if it failed for good."""
    mails: Deliveries = []
    for target in _targets(conn, rt, mail):
        mails += _one(conn, rt, mail, target, _permanent(mail, target.address))
    return mails


def complaint(conn: Connection, rt: Runtime, mail: Returning) -> Deliveries:
    """RFC 5965: the recipient of the bulletin complained of is unsubscribed from its product
    at once; a complaint about other mail is only held, for a person to read."""
    about = _about(conn, rt, mail)
    if about is None or about[0].subscription_id is None:
        return []
    delivery = about[0]
    subscription = queries.subscription(conn, delivery.subscription_id or 0)
    if subscription is None:
        return []
    why = f"ARF complaint (RFC 5965) about delivery {delivery.id}: {mail.reason}"
    change = Change(BOUNCES, How.bounce, mail.now, mail.message_id, why)
    changes.move(conn, subscription, SubscriptionState.unsubscribed, change)
    kept = NewBounce(
        at=mail.now,
        contact_id=subscription.contact_id,
        subscription_id=subscription.id,
        delivery_id=delivery.id,
        raw_mail_id=mail.stored,
        source="complaint",
        permanent=False,  # not a failure of the address: nothing is scored
        counted=False,
        reason=why,
    )
    bounce_queries.add_bounce(conn, kept)
    return []


def _one(
    conn: Connection, rt: Runtime, mail: Returning, target: _Target, permanent: bool
) -> Deliveries:
    why = (mail.returned.failure() or mail.reason)[:500]
    contact = target.contact
    delivery = target.delivery
    # Only a bounce that names a Delivery by what the gateway signed counts towards suspending
    # subscriptions: anyone can write a report naming any address to the support address. One
    # that names none is kept, and shows the SOC the address may be dead (`bounced_at`).
    signed = delivery is not None
    counting = permanent and signed
    scored = scores.count(conn, rt, contact, mail.now, why) if counting else scores.Scored()
    if permanent:
        bounce_queries.set_contact_bounced(conn, contact.id, mail.now, why)
    if permanent and not signed:
        why = f"not counted, names no mail of the gateway: {why}"[:500]
    kept = NewBounce(
        at=mail.now,
        contact_id=contact.id,
        subscription_id=delivery.subscription_id if delivery else None,
        delivery_id=delivery.id if delivery else None,
        raw_mail_id=mail.stored,
        source=target.source,
        permanent=permanent,
        counted=scored.counted,
        reason=why if permanent else f"only delayed: {why}",
    )
    bounce_queries.add_bounce(conn, kept)
    return scores.report(conn, rt, contact, scored, mail.now)


def _targets(conn: Connection, rt: Runtime, mail: Returning) -> list[_Target]:
    """The contacts a bounce is about: its Delivery's recipient alone, when the bounce names a
    Delivery by what the gateway signed (its VERP address, the returned mail's Message-ID): a
    subscriber who sends a report to his own return path cannot name others in it. Else every
    failed recipient that is a registered contact, kept but not scored (`_one`)."""
    about = _about(conn, rt, mail)
    if about is not None:
        delivery, source = about
        contact = queries.contact_at(conn, delivery.recipient)
        return [_Target(contact, delivery.recipient, delivery, source)] if contact else []
    targets: dict[int, _Target] = {}
    named = [s.recipient for s in mail.returned.statuses] + list(mail.failed)
    for address in dict.fromkeys(named):
        contact = queries.contact_at(conn, address)
        if contact is not None and contact.id not in targets:
            targets[contact.id] = _Target(contact, address, None, "dsn")
    return list(targets.values())


def _about(conn: Connection, rt: Runtime, mail: Returning) -> tuple[DeliveryRef, str] | None:
    """The Delivery a report is about: by its VERP return path, else by the Message-ID of the
    returned mail (one the gateway signed)."""
    keys, domain = dict(rt.keys), rt.settings.domain
    for address in mail.return_paths:
        delivery_id = verp.delivery_of(address, keys, domain)
        found = bounce_queries.delivery(conn, delivery_id) if delivery_id else None
        if found is not None:
            return found, "verp"
    ours = [m for m in mail.returned.message_ids if is_our_message_id(m, keys)]
    found = bounce_queries.delivery_sent_as(conn, ours)
    return (found, "dsn") if found is not None else None


def _permanent(mail: Returning, address: str) -> bool:
    """Whether the bounce says mail to `address` failed for good (RFC 3464 §2.3.3, RFC 3463)."""
    statuses = [s for s in mail.returned.statuses if s.recipient == address]
    if statuses:
        return any(s.permanent for s in statuses)
    if mail.returned.statuses:  # a DSN about another name of it (a forward, an alias)
        return not mail.returned.only_delayed
    if address in mail.failed:
        return True
    # An MTA's own words about a mail of ours: counted as Mailman counts a VERP bounce, unless
    # flufl.bounce reads it as a warning.
    return not mail.delayed
