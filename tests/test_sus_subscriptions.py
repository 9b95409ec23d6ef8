"""R4.2: subscriptions of contacts to their customer's products, each change in the audit trail;
R4.3: unsubscribe tokens that name one subscription and cannot be forged or turned."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.assembly import build
from gateway.storage.db import transaction
from gateway.storage.models import Contact, Product, SubscriptionChange
from gateway.sus import queries, tokens, verp
from gateway.sus.subscriptions import (
    ALL_KINDS,
    Change,
    How,
    SubscriptionError,
    SubscriptionState,
    kinds_of,
    subscribe,
    unsubscribe,
)
from tests.support.harness import populate, settings_for

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
ADMIN = Change("admin@securecall.example", How.cli, NOW)


@pytest.fixture
def rt(tmp_path: Path, sqlite_url: str):  # type: ignore[no-untyped-def]
    runtime = build(settings_for(tmp_path / "var", sqlite_url, sink_port=1))
    populate(runtime)
    yield runtime
    runtime.sessions.kw["bind"].dispose()


def contact(session, email: str) -> Contact:  # type: ignore[no-untyped-def]
    return session.scalars(select(Contact).where(Contact.email == email)).one()


def product(session, name: str) -> Product:  # type: ignore[no-untyped-def]
    return session.scalars(select(Product).where(Product.name == name)).one()


def test_kinds_default_to_all_three_and_unknown_ones_are_refused() -> None:
    assert kinds_of(None) == ["patch", "upgrade", "bulletin"]
    assert kinds_of("bulletin, patch") == ["patch", "bulletin"]
    with pytest.raises(SubscriptionError, match="unknown kind 'gossip'"):
        kinds_of("patch,gossip")


def test_every_change_is_kept_with_who_and_how(rt) -> None:  # type: ignore[no-untyped-def]
    with rt.sessions.begin() as session:
        alice, fortigate = contact(session, "alice@example.com"), product(session, "FortiGate 600E")
        sub, created = subscribe(session, alice, fortigate, kinds_of("patch"), ADMIN)
        again, changed = subscribe(session, alice, fortigate, kinds_of("patch"), ADMIN)
        assert created
        assert not changed
        assert again.id == sub.id
        subscribe(session, alice, fortigate, kinds_of(None), ADMIN)  # more kinds
        by_mail = Change("alice@example.com", How.mail, NOW, message_id="<u@example.com>")
        assert unsubscribe(session, sub, by_mail)
        assert not unsubscribe(session, sub, by_mail)  # once is enough
        trail = session.scalars(select(SubscriptionChange).order_by(SubscriptionChange.id)).all()
    assert [(c.from_state, c.to_state, c.kinds, c.by, c.how, c.message_id) for c in trail] == [
        (None, "active", ["patch"], "admin@securecall.example", "cli", None),
        (
            "active",
            "active",
            ["patch", "upgrade", "bulletin"],
            "admin@securecall.example",
            "cli",
            None,
        ),
        (
            "active",
            "unsubscribed",
            list(ALL_KINDS),
            "alice@example.com",
            "mail",
            "<u@example.com>",
        ),
    ]


def test_only_products_of_the_contacts_customer_can_be_subscribed(rt) -> None:  # type: ignore[no-untyped-def]
    with rt.sessions.begin() as session:
        otto, fortigate = contact(session, "otto@other.example"), product(session, "FortiGate 600E")
        with pytest.raises(SubscriptionError, match="Other GmbH has no FortiGate 600E"):
            subscribe(session, otto, fortigate, kinds_of(None), ADMIN)


def test_the_audience_is_the_active_subscribers_of_the_kind(rt) -> None:  # type: ignore[no-untyped-def]
    with rt.sessions.begin() as session:
        fortigate = product(session, "FortiGate 600E")
        alice, bernd, chloe = (
            contact(session, a)
            for a in ("alice@example.com", "bernd@example.de", "chloe@example.fr")
        )
        subscribe(session, alice, fortigate, kinds_of("patch"), ADMIN)
        subscribe(session, bernd, fortigate, kinds_of("upgrade"), ADMIN)
        pending = SubscriptionState.pending
        subscribe(session, chloe, fortigate, kinds_of(None), ADMIN, state=pending)
        product_id = fortigate.id
    with transaction(rt.sessions, readonly=True) as conn:
        patch = queries.audience(conn, product_id, "patch")
        upgrade = queries.audience(conn, product_id, "upgrade")
    assert [s.address for s in patch] == ["alice@example.com"]
    assert [s.address for s in upgrade] == ["bernd@example.de"]


def test_a_token_names_its_subscription_and_nothing_else() -> None:
    keys = {"k2": b"new key", "k1": b"old key"}
    token = tokens.sign(41, keys)
    assert tokens.verify(token, keys) == 41
    number, key_id, mac = token.split(".")
    assert tokens.verify(f"42.{key_id}.{mac}", keys) is None  # turned into another's
    assert tokens.verify(f"{number}.{key_id}.{'0' * 32}", keys) is None  # forged
    assert tokens.verify(token, {"k3": b"newer", "k1": b"old key"}) is None  # its key retired
    assert tokens.verify(tokens.sign(41, {"k1": b"old key"}), keys) == 41  # rotation: old verifies
    assert tokens.verify("../etc/passwd", keys) is None


def test_a_verp_address_names_its_delivery_and_cannot_be_forged() -> None:
    keys = {"k1": b"key"}
    address = verp.return_path(1234, keys, "securecall.example")
    assert address.startswith("bounces+1234.k1.")
    assert verp.is_verp(address, "securecall.example")
    assert verp.delivery_of(address, keys, "securecall.example") == 1234
    assert verp.delivery_of(f"<{address.upper()}>", keys, "securecall.example") == 1234
    assert verp.delivery_of(address.replace("1234", "1235"), keys, "securecall.example") is None
    assert verp.delivery_of(address, keys, "elsewhere.example") is None
    assert verp.delivery_of("bounces@securecall.example", keys, "securecall.example") is None
