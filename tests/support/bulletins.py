"""Subscribers by the thousand and bulletins, for the Support Update Service's tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import insert, select

from gateway.assembly import build
from gateway.core.runtime import Runtime
from gateway.storage.models import Contact, Product
from gateway.storage.tables import CONTACTS, CUSTOMERS, PRODUCTS, SUBSCRIPTIONS
from gateway.sus import bulletins
from gateway.sus.bulletins import Draft
from gateway.sus.subscriptions import Change, How, kinds_of, subscribe
from tests.support.harness import populate, settings_for

ADMIN = "admin@securecall.example"

PRODUCT = "FortiGate 600E"  # the demo customer's covered product
BODY = """FortiOS 7.4.5 fixes a heap overflow in the SSL-VPN daemon (**CVE-2026-1234**).

## Affected

- FortiOS 7.4.0 to 7.4.4
- FortiOS 7.2.0 to 7.2.8

## What to do

1. Upgrade to 7.4.5, or
2. disable SSL-VPN until you can.

<script>alert("not markup")</script>
"""


def subscribe_many(
    rt: Runtime, count: int, *, domain: str = "bulk.example", kinds: list[str] | None = None
) -> list[str]:
    """`count` contacts of the demo customer, each subscribed to its FortiGate: rows written with
    Core in one transaction (the directory's functions would take minutes for 10,000)."""
    now = rt.now()
    addresses = [f"s{n:05d}@{domain}" for n in range(count)]
    with rt.sessions.begin() as session:
        conn = session.connection()
        customer = conn.execute(
            select(CUSTOMERS.c.id).where(CUSTOMERS.c.name == "Example Corp")
        ).scalar_one()
        product = conn.execute(select(PRODUCTS.c.id).where(PRODUCTS.c.name == PRODUCT)).scalar_one()
        ids = conn.execute(
            insert(CONTACTS).returning(CONTACTS.c.id, sort_by_parameter_order=True),
            [
                {
                    "customer_id": customer,
                    "email": address,
                    "name": f"Subscriber {n}",
                    "language": "en",
                    "role": "technical_contact",
                    "created_at": now,
                }
                for n, address in enumerate(addresses)
            ],
        ).scalars()
        conn.execute(
            insert(SUBSCRIPTIONS),
            [
                {
                    "contact_id": contact,
                    "product_id": product,
                    "kinds": kinds or ["patch", "upgrade", "bulletin"],
                    "state": "active",
                    "bounce_score": 0.0,
                    "created_at": now,
                    "updated_at": now,
                }
                for contact in ids
            ],
        )
    return addresses


def new_bulletin(
    rt: Runtime,
    title: str = "FortiOS 7.4.5 fixes CVE-2026-1234",
    *,
    kind: str = "patch",
    severity: str = "critical",
    url: str | None = "https://fortiguard.example/psirt/FG-IR-26-123",
    body: str = BODY,
) -> int:
    with rt.sessions.begin() as session:
        draft = Draft(PRODUCT, kind, title, body, severity, url)
        return bulletins.create(session, draft, "admin@securecall.example", rt.now()).id


@contextmanager
def quiet_runtime(tmp_path: Path, database_url: str) -> Iterator[Runtime]:
    """A runtime with the test directory and no workers: what is written stays to be looked at."""
    runtime = build(settings_for(tmp_path / "var", database_url, sink_port=1))
    populate(runtime)
    try:
        yield runtime
    finally:
        runtime.sessions.kw["bind"].dispose()


def subscribe_demo(rt: Runtime, *addresses: str, kinds: str | None = None) -> None:
    """Demo contacts subscribed by an admin, as `subscriptions add` does."""
    with rt.sessions.begin() as session:
        product = session.scalars(select(Product).where(Product.name == PRODUCT)).one()
        for address in addresses:
            contact = session.scalars(select(Contact).where(Contact.email == address)).one()
            change = Change(ADMIN, How.cli, rt.now())
            subscribe(session, contact, product, kinds_of(kinds), change)
