"""R4.4: addresses that keep bouncing are suspended and reported to the admins, with Mailman 3's
bounce score: a hard bounce adds 1, at most once per address and day (the SOC's day); a score
whose last bounce is older than GATEWAY_SUS_BOUNCE_INFO_STALE_AFTER days starts again at 1; at
GATEWAY_SUS_BOUNCE_SCORE_THRESHOLD the address's subscriptions are suspended, and each admin gets
one mail about it. The clock (gateway/clock.py) calls `look` on each tick: bulletins the workers
marked failed with a 5xx count as hard bounces, and a suspended subscription whose address has
since taken a mail that did not bounce for GATEWAY_SUS_BOUNCE_RESUME_AFTER hours resumes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from gateway.core.runtime import Runtime
from gateway.core.settings import Settings
from gateway.observe import metrics
from gateway.outbound.contexts.sus import BounceLine
from gateway.sus import bounce_queries, changes, notices, queries
from gateway.sus.bounce_queries import NewBounce
from gateway.sus.queries import ContactRow, SubscriptionRow
from gateway.sus.vocabulary import BOUNCES, Change, How, SubscriptionState

Deliveries = list[tuple[int, str]]
# workers/actors.py keeps a refusal as `PermanentFailure: <code> <text>` (workers/transport.py)
_REFUSED = re.compile(r"^(?:\w+: )?5\d\d\b")


@dataclass(frozen=True)
class Scored:
    """What one hard bounce did to an address's subscriptions."""

    counted: bool = False  # a score went up (not already today, nor nothing active)
    score: float = 0.0
    suspended: list[SubscriptionRow] = field(default_factory=list)


def count(conn: Connection, rt: Runtime, contact: ContactRow, now: datetime, why: str) -> Scored:
    """A hard bounce of mail to the contact's address, on each of its active subscriptions."""
    settings = rt.settings
    threshold = settings.sus_bounce_score_threshold
    counted, top, suspended = False, 0.0, []
    for subscription in queries.subscriptions_of(conn, contact.id, ("active",)):
        score = _next_score(subscription, now, settings)
        if score is None:
            continue  # counted today already
        counted, top = True, max(top, score)
        queries.set_score(conn, subscription.id, score, now)
        if score >= threshold:
            detail = f"bounce score {score:g} reached {threshold:g}; last: {why}"
            change = Change(BOUNCES, How.bounce, now, detail=detail)
            changes.move(conn, subscription, SubscriptionState.suspended, change)
            suspended.append(subscription)
    if counted:
        metrics.BOUNCES.inc()
    metrics.SUSPENSIONS.inc(len(suspended))
    return Scored(counted, top, suspended)


def report(
    conn: Connection, rt: Runtime, contact: ContactRow, scored: Scored, now: datetime
) -> Deliveries:
    """The admins' mail about a suspension: who, which products, the bounces that counted
    (written after the bounce itself is kept, so that it is among them)."""
    if not scored.suspended or not rt.settings.sus_bounce_notify_admins:
        return []
    kept = bounce_queries.last_counted(conn, contact.id, max(int(scored.score), 1))
    lines = [
        BounceLine(at=f"{b.at:%Y-%m-%d %H:%M} UTC", source=b.source, reason=b.reason) for b in kept
    ]
    names = queries.product_names(conn, [s.product_id for s in scored.suspended])
    products = sorted(names.values())
    return notices.suspension_report(conn, rt, contact, products, scored.score, lines, now)


def look(conn: Connection, rt: Runtime, now: datetime) -> Deliveries:
    """The clock's look at the bounces no mail brings: refusals at send time, and resumptions."""
    return _refusals(conn, rt, now) + _resumptions(conn, rt, now)


def _refusals(conn: Connection, rt: Runtime, now: datetime) -> Deliveries:
    """A bulletin refused with 5xx at send time is a hard bounce; one that failed otherwise (4xx
    until the workers gave up, a template's error) is kept as seen, and not counted."""
    # an older refusal could not count any more: its score would be stale
    since = now - timedelta(days=rt.settings.sus_bounce_info_stale_after)
    mails: Deliveries = []
    for refused in bounce_queries.refused_bulletins(conn, since):
        subscription = queries.subscription(conn, refused.subscription_id)
        contact = queries.contact(conn, subscription.contact_id) if subscription else None
        if contact is None:
            continue
        hard = _REFUSED.match(refused.error) is not None
        why = f"refused at send time: {refused.error}"[:500]
        scored = count(conn, rt, contact, now, why) if hard else Scored()
        if hard:
            bounce_queries.set_contact_bounced(conn, contact.id, now, why)
        kept = NewBounce(
            at=now,
            contact_id=contact.id,
            subscription_id=refused.subscription_id,
            delivery_id=refused.delivery_id,
            raw_mail_id=None,
            source="smtp",
            permanent=hard,
            counted=scored.counted,
            reason=why,
        )
        bounce_queries.add_bounce(conn, kept)
        mails += report(conn, rt, contact, scored, now)
    return mails


def _resumptions(conn: Connection, rt: Runtime, now: datetime) -> Deliveries:
    """R4.4: a later mail to the address that stood (sent, and no bounce since for
    GATEWAY_SUS_BOUNCE_RESUME_AFTER hours) resumes its suspended subscriptions."""
    before = now - timedelta(hours=rt.settings.sus_bounce_resume_after)
    for subscription, delivery_id in bounce_queries.standing_since_suspended(conn, before):
        detail = f"delivery {delivery_id} to the address was sent and did not bounce"
        change = Change(BOUNCES, How.bounce, now, detail=detail)
        changes.move(conn, subscription, SubscriptionState.active, change)
    return []


def _next_score(subscription: SubscriptionRow, now: datetime, settings: Settings) -> float | None:
    """Mailman 3's rule: None if a bounce counted today; 1 if the last is stale; else one more."""
    last = subscription.last_bounce_at
    zone = ZoneInfo(settings.soc_timezone)
    if last is not None and last.astimezone(zone).date() == now.astimezone(zone).date():
        return None
    if last is None or now - last > timedelta(days=settings.sus_bounce_info_stale_after):
        return 1.0
    return subscription.bounce_score + 1.0
