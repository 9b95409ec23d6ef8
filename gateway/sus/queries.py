"""The statements of the fan-out: a product's active subscribers of a kind, in id order."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, select

from gateway.storage.tables import CONTACTS, SUBSCRIPTIONS


@dataclass(frozen=True)
class Subscriber:
    subscription_id: int
    contact_id: int
    address: str
    name: str


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
