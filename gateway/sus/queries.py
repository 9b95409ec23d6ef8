"""The statements of the Support Update Service: subscriptions and their audit entries, the
contacts they belong to, requests by mail and their notices, the fan-out's audience."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from gateway.storage.tables import (
    CONTACTS,
    CUSTOMERS,
    ENTITLEMENTS,
    PRODUCTS,
    SUBSCRIPTION_CHANGES,
    SUBSCRIPTION_REQUEST_REFS,
    SUBSCRIPTION_REQUESTS,
    SUBSCRIPTIONS,
    insert_ignore,
)


@dataclass(frozen=True)
class Subscriber:
    subscription_id: int
    contact_id: int
    address: str
    name: str


@dataclass(frozen=True)
class SubscriptionRow:
    """A subscription as stored (storage/models/sus.py `Subscription`)."""

    id: int
    contact_id: int
    product_id: int
    kinds: list[str]
    state: str
    bounce_score: float
    last_bounce_at: datetime | None
    updated_at: datetime


@dataclass(frozen=True)
class ContactRow:
    """A contact as the Support Update Service needs it: whom it writes to, whose it is."""

    id: int
    email: str
    name: str
    customer_id: int
    customer: str
    removed: bool


@dataclass(frozen=True)
class NewChange:
    """One audit entry (R4.2), never updated or deleted."""

    subscription_id: int
    at: datetime
    from_state: str | None
    to_state: str
    kinds: list[str]
    by: str
    how: str
    message_id: str | None
    detail: str


@dataclass(frozen=True)
class NewRequest:
    contact_id: int
    action: str  # subscribe | unsubscribe
    product_ids: list[int]
    kinds: list[str]
    state: str  # pending | approved | denied | done
    raw_mail_id: int | None
    message_id: str | None
    created_at: datetime
    decided_at: datetime | None = None
    decided_by: str | None = None
    reason: str = ""
    detail: dict[str, Any] | None = None


@dataclass(frozen=True)
class RequestRow:
    id: int
    contact_id: int
    action: str
    product_ids: list[int]
    kinds: list[str]
    state: str
    message_id: str | None
    created_at: datetime
    reason: str


_SUBSCRIPTION = select(*(SUBSCRIPTIONS.c[name] for name in SubscriptionRow.__dataclass_fields__))
_CONTACT = select(
    CONTACTS.c.id,
    CONTACTS.c.email,
    CONTACTS.c.name,
    CONTACTS.c.customer_id,
    CUSTOMERS.c.name,
    CONTACTS.c.removed_at.is_not(None),
).join(CUSTOMERS, CUSTOMERS.c.id == CONTACTS.c.customer_id)
_REQUEST = select(*(SUBSCRIPTION_REQUESTS.c[name] for name in RequestRow.__dataclass_fields__))
_ADD_REF = insert_ignore(SUBSCRIPTION_REQUEST_REFS)


def audience(
    conn: Connection, product_id: int, kind: str, after: int = 0, limit: int = 1000
) -> list[Subscriber]:
    """Active subscriptions of the product that want `kind`, of contacts still registered, with
    ids above `after` (the fan-out goes through them in batches)."""
    rows = conn.execute(
        select(
            SUBSCRIPTIONS.c.id,
            SUBSCRIPTIONS.c.kinds,
            CONTACTS.c.id,
            CONTACTS.c.email,
            CONTACTS.c.name,
        )
        .join(CONTACTS, CONTACTS.c.id == SUBSCRIPTIONS.c.contact_id)
        .where(
            SUBSCRIPTIONS.c.product_id == product_id,
            SUBSCRIPTIONS.c.state == "active",
            SUBSCRIPTIONS.c.id > after,
            CONTACTS.c.removed_at.is_(None),
        )
        .order_by(SUBSCRIPTIONS.c.id)
        .limit(limit)
    ).all()
    return [Subscriber(r[0], r[2], r[3], r[4]) for r in rows if kind in (r[1] or [])]


def subscription(conn: Connection, subscription_id: int) -> SubscriptionRow | None:
    row = conn.execute(_SUBSCRIPTION.where(SUBSCRIPTIONS.c.id == subscription_id)).first()
    return SubscriptionRow(*row) if row is not None else None


def subscription_for(conn: Connection, contact_id: int, product_id: int) -> SubscriptionRow | None:
    row = conn.execute(
        _SUBSCRIPTION.where(
            SUBSCRIPTIONS.c.contact_id == contact_id, SUBSCRIPTIONS.c.product_id == product_id
        )
    ).first()
    return SubscriptionRow(*row) if row is not None else None


def subscriptions_of(
    conn: Connection, contact_id: int, states: tuple[str, ...]
) -> list[SubscriptionRow]:
    rows = conn.execute(
        _SUBSCRIPTION.where(
            SUBSCRIPTIONS.c.contact_id == contact_id, SUBSCRIPTIONS.c.state.in_(states)
        ).order_by(SUBSCRIPTIONS.c.id)
    )
    return [SubscriptionRow(*row) for row in rows]


def add_subscription(
    conn: Connection, contact_id: int, product_id: int, kinds: list[str], state: str, now: datetime
) -> int:
    values = {
        "contact_id": contact_id,
        "product_id": product_id,
        "kinds": kinds,
        "state": state,
        "bounce_score": 0.0,
        "created_at": now,
        "updated_at": now,
    }
    return int(
        conn.execute(insert(SUBSCRIPTIONS).returning(SUBSCRIPTIONS.c.id), values).scalar_one()
    )


def set_subscription(
    conn: Connection, subscription_id: int, state: str, kinds: list[str], now: datetime, fresh: bool
) -> None:
    """A new state (and kinds); `fresh`: old bounces no longer count (R4.4, Mailman's reset)."""
    values: dict[str, Any] = {"state": state, "kinds": kinds, "updated_at": now}
    if fresh:
        values |= {"bounce_score": 0.0, "last_bounce_at": None}
    conn.execute(update(SUBSCRIPTIONS).where(SUBSCRIPTIONS.c.id == subscription_id), values)


def set_score(conn: Connection, subscription_id: int, score: float, at: datetime) -> None:
    conn.execute(
        update(SUBSCRIPTIONS)
        .where(SUBSCRIPTIONS.c.id == subscription_id)
        .values(bounce_score=score, last_bounce_at=at)
    )


def add_change(conn: Connection, change: NewChange) -> None:
    conn.execute(insert(SUBSCRIPTION_CHANGES), asdict(change))


def contact(conn: Connection, contact_id: int) -> ContactRow | None:
    row = conn.execute(_CONTACT.where(CONTACTS.c.id == contact_id)).first()
    return ContactRow(*row) if row is not None else None


def contact_at(conn: Connection, address: str) -> ContactRow | None:
    """The registered contact of an address (stored lower-case), if any."""
    row = conn.execute(
        _CONTACT.where(CONTACTS.c.email == address.lower(), CONTACTS.c.removed_at.is_(None))
    ).first()
    return ContactRow(*row) if row is not None else None


def customer_has(conn: Connection, customer_id: int, product_id: int) -> bool:
    """R4.2: an entitlement of the customer names the product."""
    found = conn.scalar(
        select(ENTITLEMENTS.c.id)
        .where(ENTITLEMENTS.c.customer_id == customer_id, ENTITLEMENTS.c.product_id == product_id)
        .limit(1)
    )
    return found is not None


def product_names(conn: Connection, product_ids: list[int]) -> dict[int, str]:
    rows = conn.execute(
        select(PRODUCTS.c.id, PRODUCTS.c.name).where(PRODUCTS.c.id.in_(product_ids))
    )
    return {int(i): str(name) for i, name in rows}


def add_request(conn: Connection, request: NewRequest) -> int:
    statement = insert(SUBSCRIPTION_REQUESTS).returning(SUBSCRIPTION_REQUESTS.c.id)
    return int(conn.execute(statement, asdict(request)).scalar_one())


def request(conn: Connection, request_id: int) -> RequestRow | None:
    row = conn.execute(_REQUEST.where(SUBSCRIPTION_REQUESTS.c.id == request_id)).first()
    return RequestRow(*row) if row is not None else None


def decide_request(
    conn: Connection, request_id: int, state: str, by: str, now: datetime, reason: str = ""
) -> bool:
    """pending -> approved | denied, once: False if someone decided it first."""
    result = conn.execute(
        update(SUBSCRIPTION_REQUESTS)
        .where(SUBSCRIPTION_REQUESTS.c.id == request_id, SUBSCRIPTION_REQUESTS.c.state == "pending")
        .values(state=state, decided_by=by[:320], decided_at=now, reason=reason[:2000])
    )
    return bool(result.rowcount)


def add_request_ref(conn: Connection, message_id: str, request_id: int) -> None:
    """The Message-ID of a request's notice to an admin, which an answer names it by."""
    conn.execute(_ADD_REF[conn.dialect.name], {"message_id": message_id, "request_id": request_id})


def request_answered(conn: Connection, message_ids: list[str]) -> int | None:
    """The request whose notice one of `message_ids` (In-Reply-To, References) is."""
    if not message_ids:
        return None
    found = conn.scalar(
        select(SUBSCRIPTION_REQUEST_REFS.c.request_id)
        .where(SUBSCRIPTION_REQUEST_REFS.c.message_id.in_(bindparam("ids", expanding=True)))
        .limit(1),
        {"ids": message_ids},
    )
    return int(found) if found is not None else None
