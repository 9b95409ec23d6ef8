"""R4.2: subscriptions of contacts to their customer's products, each change in the audit trail;
R4.3: unsubscribe tokens that name one subscription and cannot be forged or turned."""

from __future__ import annotations

import getpass
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.assembly import build
from gateway.core.runtime import Runtime
from gateway.storage.db import transaction
from gateway.storage.models import Contact, Delivery, Product, Subscription, SubscriptionChange
from gateway.sus import bulletins, changes, queries, tokens, verp
from gateway.sus.fanout import fan_out
from gateway.sus.subscriptions import (
    ALL_KINDS,
    Change,
    How,
    SubscriptionError,
    SubscriptionState,
    kinds_of,
    move,
    subscribe,
    unsubscribe,
)
from tests.support.bulletins import new_bulletin
from tests.support.harness import populate, settings_for
from tests.support.sus import CHECKPOINT, FORTIGATE, bulletin_sent, state_of, subscribed, trail
from tests.test_sus_cli import Run, use_database

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
ADMIN = Change("admin@securecall.example", How.cli, NOW)
ERIN = "erin@example.com"  # a contact who leaves Example Corp, and comes back


@pytest.fixture
def rt(tmp_path: Path, sqlite_url: str):  # type: ignore[no-untyped-def]
    runtime = build(settings_for(tmp_path / "var", sqlite_url, sink_port=1))
    populate(runtime)
    yield runtime
    runtime.sessions.kw["bind"].dispose()


@pytest.fixture
def gateway_cli(rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> Run:
    """`gateway …` in this process, on the test directory's database."""
    return use_database(monkeypatch, rt.settings.database, rt.settings.var_dir)


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


def test_removing_a_contact_ends_its_subscriptions_at_once_in_the_audit_trail(
    gateway_cli: Run, rt: Runtime
) -> None:
    # Given erin, subscribed by an admin, with a bulletin mail to her not yet sent
    me = f"cli:{getpass.getuser()}"
    gateway_cli("contacts", "add", ERIN, "--customer", "Example Corp")
    gateway_cli("subscriptions", "add", ERIN, "--product", FORTIGATE)
    delivery_id, _, _ = bulletin_sent(rt, subscribed(rt, ERIN), status="pending")
    # When she leaves (R1.8, §5.1.1)
    out = gateway_cli("contacts", "remove", ERIN)
    # Then her subscription is unsubscribed, by the admin on the command line, and says why
    listed = json.loads(gateway_cli("subscriptions", "list", "--json"))
    assert [(r["email"], r["state"]) for r in listed] == [(ERIN, "unsubscribed")]
    history = json.loads(gateway_cli("subscriptions", "history", ERIN, "--json"))
    assert [(h["from"], h["to"], h["by"], h["how"], h["detail"]) for h in history] == [
        (None, "active", me, "cli", ""),
        ("active", "unsubscribed", me, "cli", "contact removed"),
    ]
    assert out == f"contact {ERIN} removed, subscriptions ended: 1\n"
    with rt.sessions.begin() as session:
        assert session.get_one(Delivery, delivery_id).status == "cancelled"  # R4.3: at once


def test_a_contact_added_again_must_subscribe_again_and_hears_of_no_bulletin_before(
    gateway_cli: Run, rt: Runtime
) -> None:
    # Given erin subscribed, removed and added again; alice subscribed all along
    gateway_cli("contacts", "add", ERIN, "--customer", "Example Corp")
    gateway_cli("subscriptions", "add", ERIN, "--product", FORTIGATE)
    gateway_cli("subscriptions", "add", "alice@example.com", "--product", FORTIGATE)
    gateway_cli("contacts", "remove", ERIN)
    assert "added" in gateway_cli("contacts", "add", ERIN, "--customer", "Example Corp")
    # Then her subscription did not come back with her
    assert state_of(rt, ERIN) == "unsubscribed"
    with rt.sessions.begin() as session:
        product_id = product(session, FORTIGATE).id
    with transaction(rt.sessions, readonly=True) as conn:
        assert [s.address for s in queries.audience(conn, product_id, "patch")] == [
            "alice@example.com"
        ]
    # When a bulletin is published, it goes to alice alone
    bulletin_id = new_bulletin(rt)
    bulletins.publish(rt, bulletin_id, "admin@securecall.example", hand_over=False)
    assert fan_out(rt, bulletin_id) == 1
    with rt.sessions.begin() as session:
        assert list(session.scalars(select(Delivery.recipient))) == ["alice@example.com"]
    # And subscribing again is what makes her a subscriber again
    gateway_cli("subscriptions", "add", ERIN, "--product", FORTIGATE)
    assert state_of(rt, ERIN) == "active"
    assert [entry[:2] for entry in trail(rt, ERIN)] == [
        (None, "active"),
        ("active", "unsubscribed"),
        ("unsubscribed", "active"),
    ]


def test_a_leavers_pending_active_and_suspended_subscriptions_all_end_once(rt: Runtime) -> None:
    # Given alice active on one product, suspended on another, and bernd pending
    subscribed(rt, "alice@example.com")
    suspended_id = subscribed(rt, "alice@example.com", CHECKPOINT)
    subscribed(rt, "bernd@example.de", state=SubscriptionState.pending)
    with rt.sessions.begin() as session:
        found = session.get_one(Subscription, suspended_id)
        move(session, found, SubscriptionState.suspended, Change("bounces", How.bounce, NOW))
    leaving = Change("admin@securecall.example", How.cli, NOW, detail="contact removed")
    # When alice's subscriptions are ended, and then bernd's
    with transaction(rt.sessions) as conn:
        alice = queries.contact_at(conn, "alice@example.com")
        bernd = queries.contact_at(conn, "bernd@example.de")
        assert alice is not None
        assert bernd is not None
        assert len(changes.end_all(conn, alice.id, leaving)) == 2
        assert changes.end_all(conn, alice.id, leaving) == []  # nothing left to end
        assert len(changes.end_all(conn, bernd.id, leaving)) == 1
    # Then each is unsubscribed with one audit entry for it
    assert state_of(rt, "alice@example.com") == "unsubscribed"
    assert state_of(rt, "alice@example.com", CHECKPOINT) == "unsubscribed"
    assert state_of(rt, "bernd@example.de") == "unsubscribed"
    ended = [e for e in trail(rt, "alice@example.com") if e[1] == "unsubscribed"]
    assert ended == [
        ("active", "unsubscribed", "admin@securecall.example", "cli", None),
        ("suspended", "unsubscribed", "admin@securecall.example", "cli", None),
    ]


def test_a_customer_whose_contacts_were_subscribed_is_not_removed_with_their_trail(
    gateway_cli: Run, rt: Runtime
) -> None:
    gateway_cli("subscriptions", "add", "alice@example.com", "--product", FORTIGATE)
    out = gateway_cli("customers", "remove", "Example Corp", code=2)
    assert "customer 'Example Corp' has subscriptions; remove its contacts instead" in out
    assert state_of(rt, "alice@example.com") == "active"
    assert len(trail(rt, "alice@example.com")) == 1
