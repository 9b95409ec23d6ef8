"""The statements of a bulletin's fan-out: its content, the batches of its audience, its
recipients written once each, and the mails an unsubscribe cancels."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, or_, select, text, update

from gateway.storage.models import UTCDateTime
from gateway.storage.tables import (
    BULLETIN_RECIPIENTS,
    BULLETINS,
    CONTACTS,
    DELIVERIES,
    PRODUCTS,
    SUBSCRIPTIONS,
    insert_ignore,
)
from gateway.sus.queries import Subscriber

_ADD_RECIPIENT = insert_ignore(BULLETIN_RECIPIENTS)
# PostgreSQL: a batch's pairs as two arrays, in one short statement. Spelled out as rows (one
# INSERT … VALUES of them all, for RETURNING), the text was new for each batch and psycopg
# parsed it again each time: a fifth of the fan-out's time there.
_ADD_RECIPIENTS_PG = text(
    "INSERT INTO bulletin_recipients (bulletin_id, subscription_id, delivery_id, created_at) "
    "SELECT :bulletin_id, s, d, :now "
    "FROM unnest(CAST(:subscriptions AS bigint[]), CAST(:deliveries AS bigint[])) AS t(s, d) "
    "ON CONFLICT DO NOTHING RETURNING delivery_id"
).bindparams(bindparam("now", type_=UTCDateTime()))


@dataclass(frozen=True)
class BulletinContent:
    """A bulletin as its mails state it (storage/models/sus.py `Bulletin`)."""

    id: int
    product_id: int
    product: str
    kind: str
    severity: str
    title: str
    body: str
    url: str | None
    state: str
    published_at: datetime | None


def bulletin_content(conn: Connection, bulletin_id: int) -> BulletinContent | None:
    row = conn.execute(
        select(
            BULLETINS.c.id,
            BULLETINS.c.product_id,
            PRODUCTS.c.name,
            BULLETINS.c.kind,
            BULLETINS.c.severity,
            BULLETINS.c.title,
            BULLETINS.c.body,
            BULLETINS.c.url,
            BULLETINS.c.state,
            BULLETINS.c.published_at,
        )
        .join(PRODUCTS, PRODUCTS.c.id == BULLETINS.c.product_id)
        .where(BULLETINS.c.id == bulletin_id)
    ).first()
    if row is None:
        return None
    values: list[Any] = list(row)
    return BulletinContent(*values)


def take_bulletin(conn: Connection, bulletin_id: int, now: datetime) -> bool:
    """The fan-out's sign of life, first in each batch's transaction: it also holds the
    bulletin's row (PostgreSQL; SQLite has one writer anyway), so that two fan-outs of one
    bulletin write their batches one after the other. False: it is no longer publishing."""
    result = conn.execute(
        update(BULLETINS)
        .where(BULLETINS.c.id == bulletin_id, BULLETINS.c.state == "publishing")
        .values(fan_out_at=now)
    )
    return result.rowcount == 1


def mark_published(conn: Connection, bulletin_id: int) -> None:
    conn.execute(
        update(BULLETINS)
        .where(BULLETINS.c.id == bulletin_id, BULLETINS.c.state == "publishing")
        .values(state="published")
    )


def stalled_bulletins(conn: Connection, now: datetime, before: datetime) -> list[int]:
    """Bulletins left publishing with no fan-out since `before` (or handed to none yet); marked
    taken, so that the next sweep does not hand them out again."""
    ids = list(
        conn.execute(
            select(BULLETINS.c.id).where(
                BULLETINS.c.state == "publishing",
                or_(BULLETINS.c.fan_out_at.is_(None), BULLETINS.c.fan_out_at < before),
            )
        ).scalars()
    )
    if ids:
        conn.execute(update(BULLETINS).where(BULLETINS.c.id.in_(ids)).values(fan_out_at=now))
    return ids


def any_to_send(conn: Connection, drafted_since: datetime) -> bool:
    """Whether a bulletin is being sent, or was drafted since `drafted_since` and not yet sent."""
    waiting = select(BULLETINS.c.id).where(
        or_(
            BULLETINS.c.state == "publishing",
            (BULLETINS.c.state == "draft") & (BULLETINS.c.created_at >= drafted_since),
        )
    )
    return conn.execute(waiting.limit(1)).first() is not None


@dataclass(frozen=True)
class Page:
    """One batch of the audience: its subscribers of the kind, and the last subscription id it
    looked at (the next batch starts after it); `last` None: nothing was left."""

    subscribers: list[Subscriber]
    last: int | None


def audience_page(conn: Connection, product_id: int, kind: str, after: int, limit: int) -> Page:
    """Like `audience`, and where it stopped: a batch whose subscriptions all want other kinds
    is empty without being the end."""
    rows = conn.execute(
        select(SUBSCRIPTIONS.c.id, SUBSCRIPTIONS.c.kinds, CONTACTS.c.id, CONTACTS.c.email)
        .add_columns(CONTACTS.c.name)
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
    wanted = [Subscriber(r[0], r[2], r[3], r[4]) for r in rows if kind in (r[1] or [])]
    return Page(wanted, int(rows[-1][0]) if rows else None)


def audience_size(conn: Connection, product_id: int, kind: str) -> int:
    """How many the fan-out would write now."""
    kinds = conn.execute(
        select(SUBSCRIPTIONS.c.kinds)
        .join(CONTACTS, CONTACTS.c.id == SUBSCRIPTIONS.c.contact_id)
        .where(
            SUBSCRIPTIONS.c.product_id == product_id,
            SUBSCRIPTIONS.c.state == "active",
            CONTACTS.c.removed_at.is_(None),
        )
    ).scalars()
    return sum(1 for wants in kinds if kind in (wants or []))


def written(conn: Connection, bulletin_id: int, after: int, last: int) -> set[int]:
    """The subscriptions in (after, last] the bulletin already has a Delivery for (an earlier
    run of its fan-out)."""
    return set(
        conn.execute(
            select(BULLETIN_RECIPIENTS.c.subscription_id).where(
                BULLETIN_RECIPIENTS.c.bulletin_id == bulletin_id,
                BULLETIN_RECIPIENTS.c.subscription_id > after,
                BULLETIN_RECIPIENTS.c.subscription_id <= last,
            )
        ).scalars()
    )


def add_recipients(
    conn: Connection, bulletin_id: int, pairs: list[tuple[int, int]], now: datetime
) -> set[int]:
    """(subscription, delivery) rows, each at most once per bulletin and subscription (ON
    CONFLICT DO NOTHING on the unique pair); the Deliveries that did get their row."""
    if not pairs:
        return set()
    if conn.dialect.name == "postgresql":
        arrays = {"subscriptions": [s for s, _ in pairs], "deliveries": [d for _, d in pairs]}
        found = conn.execute(_ADD_RECIPIENTS_PG, {"bulletin_id": bulletin_id, "now": now, **arrays})
        return {int(i) for i in found.scalars()}
    statement = _ADD_RECIPIENT[conn.dialect.name].returning(BULLETIN_RECIPIENTS.c.delivery_id)
    rows = [
        {"bulletin_id": bulletin_id, "subscription_id": s, "delivery_id": d, "created_at": now}
        for s, d in pairs
    ]
    return {int(i) for i in conn.execute(statement, rows).scalars()}


def pending_of_bulletin(conn: Connection, bulletin_id: int) -> list[int]:
    """The bulletin's Deliveries still waiting to be sent."""
    return list(
        conn.execute(
            select(DELIVERIES.c.id)
            .join(BULLETIN_RECIPIENTS, BULLETIN_RECIPIENTS.c.delivery_id == DELIVERIES.c.id)
            .where(
                BULLETIN_RECIPIENTS.c.bulletin_id == bulletin_id,
                DELIVERIES.c.status == "pending",
            )
            .order_by(DELIVERIES.c.id)
        ).scalars()
    )


def cancel_pending(conn: Connection, subscription_id: int, reason: str) -> int:
    """R4.3, "an unsubscribe takes effect at once": the subscription's bulletin mails not yet
    sent are cancelled (a worker about to send one finds it no longer pending)."""
    mails = select(BULLETIN_RECIPIENTS.c.delivery_id).where(
        BULLETIN_RECIPIENTS.c.subscription_id == subscription_id
    )
    result = conn.execute(
        update(DELIVERIES)
        .where(DELIVERIES.c.id.in_(mails), DELIVERIES.c.status == "pending")
        .values(status="cancelled", last_error=reason[:2000])
    )
    return int(result.rowcount or 0)


def written_count(conn: Connection, bulletin_id: int) -> int:
    """The bulletin's Deliveries written so far."""
    return int(
        conn.execute(
            select(func.count())
            .select_from(BULLETIN_RECIPIENTS)
            .where(BULLETIN_RECIPIENTS.c.bulletin_id == bulletin_id)
        ).scalar_one()
    )
