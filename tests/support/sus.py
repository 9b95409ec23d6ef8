"""Support Update Service set-ups for the tests: subscriptions as an admin makes them, their
audit trail, and the rows the bulletin fan-out writes (a Bulletin, its Delivery to one
subscriber, the BulletinRecipient naming both), inserted as the fan-out inserts them."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select

from gateway.core.ids import outgoing_message_id
from gateway.core.runtime import Runtime
from gateway.core.vocabulary import Audience
from gateway.outbound.contexts.sus import ProductLine, SusConfirmation
from gateway.outbound.outbox import BULK_QUEUE
from gateway.storage.models import Contact, Product, Subscription, SubscriptionChange
from gateway.storage.tables import BULLETIN_RECIPIENTS, BULLETINS, DELIVERIES
from gateway.sus import verp
from gateway.sus.subscriptions import Change, How, SubscriptionState, kinds_of, subscribe

FORTIGATE = "FortiGate 600E"  # the demo customer's covered product
CHECKPOINT = "Check Point 6200"  # its expired one
SETUP = "setup@securecall.example"


def subscribed(
    rt: Runtime,
    email: str,
    product: str = FORTIGATE,
    state: SubscriptionState = SubscriptionState.active,
) -> int:
    """A subscription as an admin adds it; its id."""
    with rt.sessions.begin() as session:
        contact = session.scalars(select(Contact).where(Contact.email == email)).one()
        item = session.scalars(select(Product).where(Product.name == product)).one()
        change = Change(SETUP, How.cli, rt.now())
        subscription, _ = subscribe(session, contact, item, kinds_of(None), change, state)
        return subscription.id


def state_of(rt: Runtime, email: str, product: str = FORTIGATE) -> str | None:
    with rt.sessions.begin() as session:
        return session.scalar(
            select(Subscription.state)
            .join(Contact, Contact.id == Subscription.contact_id)
            .join(Product, Product.id == Subscription.product_id)
            .where(Contact.email == email, Product.name == product)
        )


def subscription_row(rt: Runtime, subscription_id: int) -> dict[str, Any]:
    with rt.sessions.begin() as session:
        found = session.get_one(Subscription, subscription_id)
        return {
            "state": found.state,
            "score": found.bounce_score,
            "last_bounce_at": found.last_bounce_at,
        }


def trail(rt: Runtime, email: str) -> list[tuple[str | None, str, str, str, str | None]]:
    """(from, to, by, how, message id) of each change of the contact's subscriptions."""
    with rt.sessions.begin() as session:
        rows = session.execute(
            select(
                SubscriptionChange.from_state,
                SubscriptionChange.to_state,
                SubscriptionChange.by,
                SubscriptionChange.how,
                SubscriptionChange.message_id,
            )
            .join(Subscription, Subscription.id == SubscriptionChange.subscription_id)
            .join(Contact, Contact.id == Subscription.contact_id)
            .where(Contact.email == email)
            .order_by(SubscriptionChange.id)
        ).all()
    return [tuple(row) for row in rows]  # type: ignore[misc]


def bulletin_sent(
    rt: Runtime, subscription_id: int, *, status: str = "sent", now: datetime | None = None
) -> tuple[int, str, str]:
    """What the fan-out writes for one subscriber of a bulletin (here, already sent unless
    `status` says otherwise): returns the Delivery's id, its Message-ID and its VERP return
    path. A pending one goes out through the real workers, rendered from a template of this
    room, standing in for the bulletin's own."""
    now = now or rt.now()
    keys, domain = dict(rt.keys), rt.settings.domain
    with rt.sessions.begin() as session:
        conn = session.connection()
        subscription = session.get_one(Subscription, subscription_id)
        contact = session.get_one(Contact, subscription.contact_id)
        bulletin_id = conn.execute(
            insert(BULLETINS).returning(BULLETINS.c.id),
            {
                "product_id": subscription.product_id,
                "kind": "patch",
                "severity": "high",
                "title": "FortiOS 7.4.5 fixes CVE-2026-0001",
                "body": "Upgrade **now**.",
                "url": "https://vendor.example/psirt/1",
                "state": "published",
                "created_at": now,
                "created_by": SETUP,
                "published_at": now,
                "published_by": SETUP,
            },
        ).scalar_one()
        message_id = outgoing_message_id(f"bulletin-{bulletin_id}", domain, keys)
        context = SusConfirmation(
            contact_name=contact.name,
            outcome="subscribed",
            done=[ProductLine(product="stand-in for a bulletin", detail="patch")],
            refused=[],
            reason="",
            sus_address=rt.settings.sus_mailbox,
            soc_phone=rt.settings.soc_phone,
        )
        delivery_id = conn.execute(
            insert(DELIVERIES).returning(DELIVERIES.c.id),
            {
                "template": "sus_confirmation",
                "audience": Audience.customer,
                "language": "en",
                "recipient": contact.email,
                "context": asdict(context),
                "message_id": message_id,
                "references": "",
                "auto_submitted": "auto-generated",
                "queue": BULK_QUEUE,
                "status": status,
                "attempts": 1 if status == "sent" else 0,
                "next_attempt_at": now,
                "sent_at": now if status == "sent" else None,
                "last_error": "",
                "created_at": now,
            },
        ).scalar_one()
        conn.execute(
            insert(BULLETIN_RECIPIENTS),
            {
                "bulletin_id": bulletin_id,
                "subscription_id": subscription_id,
                "delivery_id": delivery_id,
                "created_at": now,
            },
        )
    return delivery_id, message_id, verp.return_path(delivery_id, keys, domain)
