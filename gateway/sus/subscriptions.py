"""R4.2: subscriptions of registered contacts to a product's bulletins, and every change to them
written to the append-only audit trail: when, from what state to what, by whom and how.

Only contacts can be subscribed, and only to products their customer has (an entitlement of
the customer names the product).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.storage.models import Contact, Entitlement, Product, Subscription, SubscriptionChange


class Kind(StrEnum):
    """What a bulletin is about (§3.8): patches, upgrades, technical bulletins."""

    patch = "patch"
    upgrade = "upgrade"
    bulletin = "bulletin"


class SubscriptionState(StrEnum):
    pending = "pending"  # asked for, waiting for an admin (GATEWAY_SUS_SUBSCRIBE_POLICY=admin)
    active = "active"  # receives the product's bulletins of its kinds
    suspended = "suspended"  # its address kept bouncing (R4.4); an admin or a delivery resumes it
    unsubscribed = "unsubscribed"  # R4.3: at once, whoever asked


class How(StrEnum):
    """How a change was asked for (the audit trail's `how`)."""

    cli = "cli"
    mail = "mail"
    one_click = "one-click"
    web = "web"
    bounce = "bounce"


ALL_KINDS = tuple(Kind)
BOUNCES = "bounces"  # who the bounce processor is in the audit trail


class SubscriptionError(ValueError):
    """A subscription change that cannot be made; the message says why."""


@dataclass(frozen=True)
class Change:
    """Who asks for a change and how (R4.2: every change is kept with who and how)."""

    by: str
    how: How
    now: datetime
    message_id: str | None = None
    detail: str = ""


def kinds_of(value: str | Iterable[str] | None) -> list[str]:
    """`patch,upgrade` (or a list) as the kinds it names, in their order; none named: all."""
    names = value.split(",") if isinstance(value, str) else list(value or [])
    wanted = [name.strip().lower() for name in names if name.strip()]
    unknown = [name for name in wanted if name not in ALL_KINDS]
    if unknown:
        raise SubscriptionError(f"unknown kind {unknown[0]!r}: one of {', '.join(ALL_KINDS)}")
    return [kind for kind in ALL_KINDS if kind in wanted] or list(ALL_KINDS)


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
    if contact.removed_at is not None:
        raise SubscriptionError(f"{contact.email} is no longer a contact")
    if product.id not in {p.id for p in products_of_customer(session, contact.customer_id)}:
        raise SubscriptionError(f"{contact.customer.name} has no {product.name}")
    existing = subscription_of(session, contact, product)
    if existing is None:
        existing = Subscription(
            contact_id=contact.id,
            product_id=product.id,
            kinds=kinds,
            state=state,
            bounce_score=0.0,
            created_at=change.now,
            updated_at=change.now,
        )
        session.add(existing)
        session.flush()
        _audit(session, existing, None, change)
        return existing, True
    if existing.state == SubscriptionState.active and state == SubscriptionState.pending:
        state = SubscriptionState.active  # asking again for what one has changes only the kinds
    if existing.state == state and existing.kinds == kinds:
        return existing, False
    before, existing.kinds = existing.state, kinds
    _enter(existing, state, change)
    _audit(session, existing, before, change)
    return existing, True


def move(
    session: Session, subscription: Subscription, to: SubscriptionState, change: Change
) -> bool:
    """A subscription's new state, with its audit entry; False if it was in that state."""
    before = subscription.state
    if before == to:
        return False
    _enter(subscription, to, change)
    _audit(session, subscription, before, change)
    return True


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


def _enter(subscription: Subscription, to: SubscriptionState, change: Change) -> None:
    subscription.state = to
    subscription.updated_at = change.now
    if to == SubscriptionState.active:  # a fresh start: old bounces no longer count (R4.4)
        subscription.bounce_score, subscription.last_bounce_at = 0.0, None


def _audit(
    session: Session, subscription: Subscription, before: str | None, change: Change
) -> None:
    session.add(
        SubscriptionChange(
            subscription_id=subscription.id,
            at=change.now,
            from_state=before,
            to_state=subscription.state,
            kinds=list(subscription.kinds),
            by=change.by[:320],
            how=change.how,
            message_id=change.message_id,
            detail=change.detail[:2000],
        )
    )
    session.flush()
