"""R4.2: subscriptions of registered contacts to a product's bulletins, and every change to them
written to the append-only audit trail: when, from what state to what, by whom and how.

Only contacts can be subscribed, and only to products their customer has (an entitlement of
the customer names the product). These are the ORM side, for admin work; the change itself is
made in Core by gateway/sus/changes.py, on the session's own connection, as the mail path makes
it.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.storage.models import Contact, Entitlement, Product, Subscription, SubscriptionChange
from gateway.sus import changes
from gateway.sus.queries import SubscriptionRow
from gateway.sus.vocabulary import (
    ALL_KINDS,
    BOUNCES,
    Change,
    How,
    Kind,
    SubscriptionError,
    SubscriptionState,
    kinds_of,
)

__all__ = [
    "ALL_KINDS",
    "BOUNCES",
    "Change",
    "How",
    "Kind",
    "SubscriptionError",
    "SubscriptionState",
    "history",
    "kinds_of",
    "move",
    "products_of_customer",
    "subscribe",
    "subscription_of",
    "unsubscribe",
]


def products_of_customer(session: Session, customer_id: int) -> list[Product]:
    """The products a customer has (an entitlement names them), by name."""
    return list(
        session.scalars(
            select(Product)
            .join(Entitlement, Entitlement.product_id == Product.id)
            .where(Entitlement.customer_id == customer_id)
            .distinct()
            .order_by(Product.name)
        )
    )


def subscription_of(session: Session, contact: Contact, product: Product) -> Subscription | None:
    return session.scalar(
        select(Subscription).where(
            Subscription.contact_id == contact.id, Subscription.product_id == product.id
        )
    )


def subscribe(
    session: Session,
    contact: Contact,
    product: Product,
    kinds: list[str],
    change: Change,
    state: SubscriptionState = SubscriptionState.active,
) -> tuple[Subscription, bool]:
    """A contact subscribed (or the kinds changed) to a product of its customer; returns the
    subscription and whether anything changed."""
    session.flush()
    row, changed = changes.subscribe(
        session.connection(), contact.id, product.id, kinds, change, state
    )
    return _loaded(session, row), changed


def move(
    session: Session, subscription: Subscription, to: SubscriptionState, change: Change
) -> bool:
    """A subscription's new state, with its audit entry; False if it was in that state."""
    session.flush()
    row = SubscriptionRow(
        subscription.id,
        subscription.contact_id,
        subscription.product_id,
        list(subscription.kinds),
        subscription.state,
        subscription.bounce_score,
        subscription.last_bounce_at,
        subscription.updated_at,
    )
    changed = changes.move(session.connection(), row, to, change)
    session.refresh(subscription)
    return changed


def unsubscribe(session: Session, subscription: Subscription, change: Change) -> bool:
    """R4.3: at once, always; False if it was unsubscribed already."""
    return move(session, subscription, SubscriptionState.unsubscribed, change)


def history(session: Session, subscription_ids: Iterable[int]) -> list[SubscriptionChange]:
    ids = list(subscription_ids)
    return list(
        session.scalars(
            select(SubscriptionChange)
            .where(SubscriptionChange.subscription_id.in_(ids))
            .order_by(SubscriptionChange.at, SubscriptionChange.id)
        )
    )


def _loaded(session: Session, row: SubscriptionRow) -> Subscription:
    """The ORM copy of a subscription Core just wrote, read afresh."""
    return session.get_one(Subscription, row.id, populate_existing=True)
