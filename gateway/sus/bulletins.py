"""Bulletins (§3.8, R4.1, R4.3): written by an admin in Markdown, published once, and what
became of each one's mails.

`publish` marks a bulletin publishing and hands its fan-out to a worker (gateway/sus/fanout.py);
from a command with no broker of its own, the running gateway's sweep takes it up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from gateway.core.hours import iso
from gateway.core.runtime import Runtime
from gateway.storage.db import transaction
from gateway.storage.models import (
    Bulletin,
    BulletinRecipient,
    Delivery,
    Product,
    Subscription,
    SubscriptionChange,
)
from gateway.sus import bulletin_queries
from gateway.sus.addressing import advisory_url
from gateway.sus.subscriptions import Kind
from gateway.sus.vocabulary import Severity

MAX_BODY = 256 * 1024  # characters of Markdown: an advisory, not a manual


class BulletinState(StrEnum):
    draft = "draft"  # written, not sent
    publishing = "publishing"  # its fan-out is writing its Deliveries
    published = "published"  # every subscriber of its audience has a Delivery


class BulletinError(ValueError):
    """A bulletin that cannot be written or published; the message says why."""


@dataclass(frozen=True)
class Draft:
    """What an admin writes (the command line's `bulletins create`)."""

    product: str
    kind: str
    title: str
    body: str
    severity: str = Severity.medium
    url: str | None = None


def create(session: Session, draft: Draft, by: str, now: datetime) -> Bulletin:
    product = session.scalar(select(Product).where(Product.name == draft.product))
    if product is None:
        raise BulletinError(f"no product {draft.product!r}")
    if draft.kind not in tuple(Kind):
        raise BulletinError(f"unknown kind {draft.kind!r}: one of {', '.join(Kind)}")
    if draft.severity not in tuple(Severity):
        raise BulletinError(f"unknown severity {draft.severity!r}: one of {', '.join(Severity)}")
    title = draft.title.strip()
    if not title or len(title) > 300 or any(c in title for c in "\r\n\x00"):
        raise BulletinError("the title must be one line of 1 to 300 characters")
    if not draft.body.strip() or len(draft.body) > MAX_BODY or "\x00" in draft.body:
        raise BulletinError(f"the body must be Markdown text of 1 to {MAX_BODY} characters")
    try:
        url = advisory_url(draft.url)
    except ValueError as exc:
        raise BulletinError(str(exc)) from None
    bulletin = Bulletin(
        product_id=product.id,
        kind=draft.kind,
        severity=draft.severity,
        title=title,
        body=draft.body,
        url=url,
        state=BulletinState.draft,
        created_at=now,
        created_by=by[:320],
    )
    session.add(bulletin)
    session.flush()
    return bulletin


def require(session: Session, bulletin_id: int) -> Bulletin:
    bulletin = session.get(Bulletin, bulletin_id)
    if bulletin is None:
        raise BulletinError(f"no bulletin {bulletin_id}")
    return bulletin


def publish(rt: Runtime, bulletin_id: int, by: str, *, hand_over: bool) -> str:
    """draft -> publishing (a publishing one is taken up again: the fan-out resumes where it
    stopped). `hand_over`: enqueue the fan-out here, for this process's broker reaches workers;
    else it waits for the running gateway's sweep. Returns the bulletin's state."""
    now = rt.now()
    with rt.sessions.begin() as session:
        bulletin = require(session, bulletin_id)
        if bulletin.state == BulletinState.published:
            return bulletin.state
        if bulletin.state == BulletinState.draft:
            bulletin.state = BulletinState.publishing
            bulletin.published_at, bulletin.published_by = now, by[:320]
        bulletin.fan_out_at = now if hand_over else None  # None: the next sweep hands it out
    if hand_over:
        rt.outbox.fan_out(bulletin_id)
    return BulletinState.publishing


def progress(rt: Runtime, bulletin_id: int) -> tuple[str, int, int]:
    """(state, Deliveries written, audience) while a bulletin is being published."""
    with transaction(rt.sessions, readonly=True) as conn:
        content = bulletin_queries.bulletin_content(conn, bulletin_id)
        if content is None:
            raise BulletinError(f"no bulletin {bulletin_id}")
        written = bulletin_queries.written_count(conn, bulletin_id)
        if content.state == BulletinState.published:
            return content.state, written, written
        size = bulletin_queries.audience_size(conn, content.product_id, content.kind)
    return content.state, written, max(size, written)


def listing(session: Session) -> list[dict[str, Any]]:
    rows = session.execute(
        select(Bulletin, Product.name)
        .join(Product, Product.id == Bulletin.product_id)
        .order_by(Bulletin.id.desc())
    ).all()
    return [_row(b, name) for b, name in rows]


def _row(b: Bulletin, product: str) -> dict[str, Any]:
    return {
        "id": b.id,
        "product": product,
        "kind": b.kind,
        "severity": b.severity,
        "title": b.title,
        "url": b.url,
        "state": b.state,
        "created_at": iso(b.created_at),
        "created_by": b.created_by,
        "published_at": iso(b.published_at),
        "published_by": b.published_by,
    }


def status(rt: Runtime, bulletin_id: int) -> dict[str, Any]:
    """What became of a bulletin's mails: its audience, the Deliveries written, sent, failed,
    cancelled and waiting, the recipients who bounced and who unsubscribed since it went out."""
    state, written, audience = progress(rt, bulletin_id)
    with rt.sessions.begin() as session:
        bulletin = require(session, bulletin_id)
        product = session.get(Product, bulletin.product_id)
        mails = select(BulletinRecipient.delivery_id).where(
            BulletinRecipient.bulletin_id == bulletin_id
        )
        by_status = dict(
            session.execute(
                select(Delivery.status, func.count())
                .where(Delivery.id.in_(mails))
                .group_by(Delivery.status)
            ).all()
        )
        since = bulletin.published_at
        figures = {
            "bounced": _bounced(session, bulletin_id, since),
            "unsubscribed_since": _unsubscribed_since(session, bulletin_id, since),
        }
        shown = _row(bulletin, product.name if product else "")
    return {
        **shown,
        "state": state,
        "audience": audience,
        "written": written,
        "sent": by_status.get("sent", 0),
        "failed": by_status.get("failed", 0),
        "cancelled": by_status.get("cancelled", 0),
        "waiting": by_status.get("pending", 0) + by_status.get("sending", 0),
        **figures,
    }


def _bounced(session: Session, bulletin_id: int, since: datetime | None) -> int:
    """Recipients refused for good at sending (5xx), or whose subscription recorded a bounce
    since the bulletin went out (R4.4)."""
    if since is None:
        return 0
    query = (
        select(func.count())
        .select_from(BulletinRecipient)
        .join(Delivery, Delivery.id == BulletinRecipient.delivery_id)
        .join(Subscription, Subscription.id == BulletinRecipient.subscription_id)
        .where(
            BulletinRecipient.bulletin_id == bulletin_id,
            or_(
                and_(
                    Delivery.status == "failed",
                    Delivery.last_error.like("PermanentFailure: 5%"),
                ),
                Subscription.last_bounce_at >= since,
            ),
        )
    )
    return session.scalar(query) or 0


def _unsubscribed_since(session: Session, bulletin_id: int, since: datetime | None) -> int:
    if since is None:
        return 0
    recipients = select(BulletinRecipient.subscription_id).where(
        BulletinRecipient.bulletin_id == bulletin_id
    )
    query = select(func.count(func.distinct(SubscriptionChange.subscription_id))).where(
        SubscriptionChange.subscription_id.in_(recipients),
        SubscriptionChange.to_state == "unsubscribed",
        SubscriptionChange.at >= since,
    )
    return session.scalar(query) or 0
