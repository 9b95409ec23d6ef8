"""The Support Update Service as the command line shows it (cli/sus.py), as plain dicts:
subscriptions, their audit trail, the requests by mail."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.storage.models import (
    Contact,
    Customer,
    Product,
    Subscription,
    SubscriptionChange,
    SubscriptionRequest,
)
from gateway.sus.vocabulary import RequestState


def subscriptions(
    session: Session, product: str | None = None, state: str | None = None
) -> list[dict[str, Any]]:
    query = (
        select(Subscription, Contact.email, Customer.name, Product.name)
        .join(Contact, Contact.id == Subscription.contact_id)
        .join(Customer, Customer.id == Contact.customer_id)
        .join(Product, Product.id == Subscription.product_id)
        .order_by(Product.name, Contact.email)
    )
    if product is not None:
        query = query.where(Product.name == product)
    if state is not None:
        query = query.where(Subscription.state == state)
    return [
        {
            "id": s.id,
            "email": email,
            "customer": customer,
            "product": name,
            "kinds": ",".join(s.kinds),
            "state": s.state,
            "bounce_score": s.bounce_score,
            "last_bounce_at": _at(s.last_bounce_at),
            "updated_at": _at(s.updated_at),
        }
        for s, email, customer, name in session.execute(query)
    ]


def history(
    session: Session, email: str | None = None, product: str | None = None
) -> list[dict[str, Any]]:
    """Every change, oldest first (R4.2's audit trail): when, whose, from what to what, by
    whom, how, with the Message-ID of the mail that asked."""
    query = (
        select(SubscriptionChange, Contact.email, Product.name)
        .join(Subscription, Subscription.id == SubscriptionChange.subscription_id)
        .join(Contact, Contact.id == Subscription.contact_id)
        .join(Product, Product.id == Subscription.product_id)
        .order_by(SubscriptionChange.at, SubscriptionChange.id)
    )
    if email is not None:
        query = query.where(Contact.email == email.strip().lower())
    if product is not None:
        query = query.where(Product.name == product)
    return [
        {
            "at": _at(c.at),
            "email": address,
            "product": name,
            "from": c.from_state,
            "to": c.to_state,
            "kinds": ",".join(c.kinds),
            "by": c.by,
            "how": c.how,
            "message_id": c.message_id,
            "detail": c.detail,
        }
        for c, address, name in session.execute(query)
    ]


def requests(session: Session, every: bool = False) -> list[dict[str, Any]]:
    """The requests by mail: those pending (oldest first), or all."""
    query = (
        select(SubscriptionRequest, Contact.email, Customer.name)
        .join(Contact, Contact.id == SubscriptionRequest.contact_id)
        .join(Customer, Customer.id == Contact.customer_id)
        .order_by(SubscriptionRequest.created_at, SubscriptionRequest.id)
    )
    if not every:
        query = query.where(SubscriptionRequest.state == RequestState.pending)
    rows = session.execute(query).all()
    ids = {pid for r, _, _ in rows for pid in r.product_ids}
    found = session.execute(select(Product.id, Product.name).where(Product.id.in_(ids)))
    names = {int(pid): str(name) for pid, name in found}
    return [
        {
            "id": r.id,
            "email": email,
            "customer": customer,
            "action": r.action,
            "products": ", ".join(names.get(p, str(p)) for p in r.product_ids),
            "state": r.state,
            "created_at": _at(r.created_at),
            "decided_by": r.decided_by,
            "decided_at": _at(r.decided_at),
            "reason": r.reason,
            "message_id": r.message_id,
        }
        for r, email, customer in rows
    ]


def _at(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
