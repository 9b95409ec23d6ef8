"""R4.3, RFC 8058: unsubscribing by the signed token of a bulletin's link, at once.

What a token names is shown before anything changes (a page: link scanners fetch links, and a
GET never unsubscribes); the POST of the one-click body or of the page's button unsubscribes,
writes the audit entry (the contact, `one-click` or `web`) and cancels the contact's mails of
the product's bulletins not yet sent. A token that is malformed, forged, signed by a retired key
or names no subscription is refused alike, so that nothing tells who exists.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy.orm import Session

from gateway.core.runtime import Runtime
from gateway.storage.models import Contact, Product, Subscription
from gateway.sus import bulletin_queries, tokens
from gateway.sus.subscriptions import Change, How, SubscriptionState, unsubscribe


@dataclass(frozen=True)
class Stopping:
    """What a token's unsubscribe stops: the product's bulletins of these kinds."""

    product: str
    kinds: list[str]
    state: str  # the subscription's, before (GET) or after (POST)
    changed: bool = False  # POST: it was unsubscribed now (False: it was already)
    cancelled: int = 0  # POST: its bulletin mails not yet sent, cancelled


def _subscription(
    session: Session, token: str, keys: Mapping[str, bytes]
) -> tuple[Subscription, Product, Contact] | None:
    subscription_id = tokens.verify(token, keys)
    if subscription_id is None:
        return None
    subscription = session.get(Subscription, subscription_id)
    if subscription is None:
        return None
    return subscription, subscription.product, subscription.contact


def look_up(rt: Runtime, token: str) -> Stopping | None:
    """What the token's subscription is; None for any token that is not good."""
    with rt.sessions.begin() as session:
        found = _subscription(session, token, rt.keys)
        if found is None:
            return None
        subscription, product, _ = found
        return Stopping(product.name, list(subscription.kinds), subscription.state)


def unsubscribe_by_token(rt: Runtime, token: str, how: How) -> Stopping | None:
    """Unsubscribe at once (R4.3); None, and nothing changed, for any token that is not good."""
    now = rt.now()
    with rt.sessions.begin() as session:
        found = _subscription(session, token, rt.keys)
        if found is None:
            return None
        subscription, product, contact = found
        detail = "RFC 8058 one-click POST" if how == How.one_click else "the unsubscribe page"
        reason = f"cancelled: {contact.email} unsubscribed ({how}) at {now.isoformat()}"
        cancelled = bulletin_queries.cancel_pending(session.connection(), subscription.id, reason)
        changed = unsubscribe(session, subscription, Change(contact.email, how, now, detail=detail))
        return Stopping(
            product.name,
            list(subscription.kinds),
            SubscriptionState.unsubscribed,
            changed=changed,
            cancelled=cancelled,
        )
