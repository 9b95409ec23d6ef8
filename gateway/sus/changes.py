"""R4.2: a subscription changed, with its audit entry, in the transaction that decided it.

Core statements, so that the mail path (requests by mail, bounces) and the admin's ORM session
(gateway/sus/subscriptions.py hands its connection here) change subscriptions one way.
"""

from __future__ import annotations

from sqlalchemy import Connection

from gateway.sus import bulletin_queries, queries
from gateway.sus.queries import NewChange, SubscriptionRow
from gateway.sus.vocabulary import Change, SubscriptionError, SubscriptionState


def subscribe(
    conn: Connection,
    contact_id: int,
    product_id: int,
    kinds: list[str],
    change: Change,
    state: SubscriptionState = SubscriptionState.active,
) -> tuple[SubscriptionRow, bool]:
    """A contact subscribed (or its kinds changed) to a product its customer has; returns the
    subscription and whether anything changed. Only registered contacts (R4.2)."""
    contact = queries.contact(conn, contact_id)
    if contact is None or contact.removed:
        raise SubscriptionError(
            f"{contact.email if contact else contact_id} is no longer a contact"
        )
    if not queries.customer_has(conn, contact.customer_id, product_id):
        product = queries.product_names(conn, [product_id]).get(product_id, f"product {product_id}")
        raise SubscriptionError(f"{contact.customer} has no {product}")
    existing = queries.subscription_for(conn, contact_id, product_id)
    if existing is None:
        new = queries.add_subscription(conn, contact_id, product_id, kinds, state, change.now)
        return _audited(conn, new, None, change), True
    if existing.state == SubscriptionState.active and state == SubscriptionState.pending:
        state = SubscriptionState.active  # asking again for what one has changes only the kinds
    if existing.state == state and existing.kinds == kinds:
        return existing, False
    fresh = state == SubscriptionState.active and existing.state != state
    queries.set_subscription(conn, existing.id, state, kinds, change.now, fresh)
    return _audited(conn, existing.id, existing.state, change), True


def move(
    conn: Connection, subscription: SubscriptionRow, to: SubscriptionState, change: Change
) -> bool:
    """A subscription's new state, with its audit entry; False if it was in that state. Entering
    `active` starts afresh: old bounces no longer count (R4.4)."""
    if subscription.state == to:
        return False
    fresh = to == SubscriptionState.active
    queries.set_subscription(conn, subscription.id, to, subscription.kinds, change.now, fresh)
    _audited(conn, subscription.id, subscription.state, change)
    if to in (SubscriptionState.unsubscribed, SubscriptionState.suspended):
        # R4.3: "takes effect at once": its bulletin mails not yet sent go nowhere
        reason = f"cancelled: {to} ({change.how}) by {change.by} at {change.now.isoformat()}"
        bulletin_queries.cancel_pending(conn, subscription.id, reason)
    return True


# What a leaver may still hold: every state but `unsubscribed`
LIVE = (SubscriptionState.pending, SubscriptionState.active, SubscriptionState.suspended)


def end_all(conn: Connection, contact_id: int, change: Change) -> list[SubscriptionRow]:
    """R1.8, §5.1.1: a removed contact's subscriptions end at once (unsubscribed, each with its
    audit entry and its bulletin mails not yet sent cancelled), so that a contact added again
    starts with none and must subscribe again (R4.2). Returns those it ended."""
    ended = queries.subscriptions_of(conn, contact_id, LIVE)
    for row in ended:
        move(conn, row, SubscriptionState.unsubscribed, change)
    return ended


def _audited(
    conn: Connection, subscription_id: int, before: str | None, change: Change
) -> SubscriptionRow:
    row = queries.subscription(conn, subscription_id)
    if row is None:
        raise SubscriptionError(f"no subscription {subscription_id}")
    entry = NewChange(
        subscription_id=row.id,
        at=change.now,
        from_state=before,
        to_state=row.state,
        kinds=list(row.kinds),
        by=change.by[:320],
        how=change.how,
        message_id=change.message_id,
        detail=change.detail[:2000],
    )
    queries.add_change(conn, entry)
    return row
