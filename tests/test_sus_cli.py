"""`gateway subscriptions …`: the admins' commands (R4.2, R4.4), every listing as JSON too, every
change in the audit trail by the admin, how `cli`."""

from __future__ import annotations

import getpass
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli.app import app
from gateway.assembly import build
from gateway.core.runtime import Runtime
from gateway.storage.models import Delivery, Subscription, SubscriptionRequest
from gateway.sus.subscriptions import Change, How, SubscriptionState, move
from tests.support.harness import Gateway, OffsetClock, count, mail, populate, settings_for
from tests.support.sink import Sink
from tests.support.sus import CHECKPOINT, FORTIGATE, state_of, subscribed, trail

ALICE, BERND, OTTO = "alice@example.com", "bernd@example.de", "otto@other.example"
ADMIN_MAIL = "sus-admin@securecall.example"
Run = Callable[..., str]


def use_database(monkeypatch: pytest.MonkeyPatch, database: str, var_dir: Path) -> Run:
    monkeypatch.setenv("GATEWAY_DATABASE_URL", database)
    monkeypatch.setenv("GATEWAY_VAR_DIR", str(var_dir))
    monkeypatch.setenv("GATEWAY_SECRET_KEY", "test-signing-key")
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, list(args), catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result.output

    return run


@pytest.fixture
def rt(tmp_path: Path, sqlite_url: str) -> Iterator[Runtime]:
    runtime = build(settings_for(tmp_path / "var", sqlite_url, sink_port=1))
    populate(runtime)
    yield runtime
    runtime.sessions.kw["bind"].dispose()


@pytest.fixture
def gateway_cli(rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> Run:
    """`gateway …` in this process, on the test directory's database."""
    return use_database(monkeypatch, rt.settings.database, rt.settings.var_dir)


def as_json(run: Run, *args: str) -> Any:
    return json.loads(run(*args, "--json"))


def test_add_list_remove_and_the_history_says_who_and_how(
    gateway_cli: Run, rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    me = f"cli:{getpass.getuser()}"
    assert "subscribed: FortiGate 600E (patch,upgrade)" in gateway_cli(
        "subscriptions", "add", ALICE, "--product", FORTIGATE, "--kind", "upgrade,patch"
    )
    assert "already subscribed" in gateway_cli(
        "subscriptions", "add", ALICE, "--product", FORTIGATE, "--kind", "patch,upgrade"
    )
    gateway_cli("subscriptions", "add", BERND, "--product", FORTIGATE)
    listed = as_json(gateway_cli, "subscriptions", "list")
    assert [(r["email"], r["product"], r["kinds"], r["state"]) for r in listed] == [
        (ALICE, FORTIGATE, "patch,upgrade", "active"),
        (BERND, FORTIGATE, "patch,upgrade,bulletin", "active"),
    ]
    assert "unsubscribed" in gateway_cli("subscriptions", "remove", ALICE, "--product", FORTIGATE)
    assert "was not subscribed" in gateway_cli(
        "subscriptions", "remove", ALICE, "--product", FORTIGATE
    )
    only_active = as_json(gateway_cli, "subscriptions", "list", "--state", "active")
    assert [r["email"] for r in only_active] == [BERND]
    history = as_json(gateway_cli, "subscriptions", "history", ALICE)
    assert [(h["from"], h["to"], h["by"], h["how"]) for h in history] == [
        (None, "active", me, "cli"),
        ("active", "unsubscribed", me, "cli"),
    ]
    assert len(as_json(gateway_cli, "subscriptions", "history")) == 3
    monkeypatch.setenv("COLUMNS", "300")  # a table's cells wrap to the terminal's width
    table = gateway_cli("subscriptions", "history", ALICE)
    assert "unsubscribed" in table
    assert me in table


def test_the_admin_is_named_by_gateway_admin_name(
    gateway_cli: Run, rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATEWAY_ADMIN_NAME", "jo@securecall.example")
    gateway_cli("subscriptions", "add", ALICE, "--product", FORTIGATE)
    assert trail(rt, ALICE) == [(None, "active", "jo@securecall.example", "cli", None)]


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("nobody@example.com", "--product", FORTIGATE), "is not a registered contact"),
        ((OTTO, "--product", FORTIGATE), "Other GmbH has no FortiGate 600E"),
        ((ALICE, "--product", "Palo Alto PA-220"), "no product named 'Palo Alto PA-220'"),
        ((ALICE, "--product", FORTIGATE, "--kind", "gossip"), "unknown kind 'gossip'"),
    ],
    ids=["no-contact", "not-the-customers", "no-product", "bad-kind"],
)
def test_add_refuses_what_cannot_be_subscribed(
    gateway_cli: Run, rt: Runtime, args: tuple[str, ...], error: str
) -> None:
    out = gateway_cli("subscriptions", "add", *args, code=2)
    assert error in out
    assert as_json(gateway_cli, "subscriptions", "list") == []


def test_an_unknown_state_is_refused_before_anything_is_opened(gateway_cli: Run) -> None:
    out = gateway_cli("subscriptions", "list", "--state", "bogus", code=2)
    assert "'bogus' is not one of" in out


def test_import_reports_added_unchanged_and_refused_rows(
    gateway_cli: Run, rt: Runtime, tmp_path: Path
) -> None:
    csv = tmp_path / "subs.csv"
    csv.write_text(
        "email,product,kinds\n"
        f"{ALICE},{FORTIGATE},patch\n"
        f"{BERND},{FORTIGATE},\n"
        f"{OTTO},{FORTIGATE},patch\n"
        f"nobody@example.com,{FORTIGATE},\n"
        f"{ALICE},{CHECKPOINT},gossip\n"
    )
    out = gateway_cli("subscriptions", "import", str(csv), "--json", code=1)
    result = json.loads(out[: out.rindex("}") + 1])
    assert (result["added"], result["unchanged"]) == (2, 0)
    assert result["refused"] == [
        f"line 4: {OTTO}, {FORTIGATE}: Other GmbH has no FortiGate 600E",
        f"line 5: nobody@example.com, {FORTIGATE}: "
        "nobody@example.com is not a registered contact (R4.2)",
        f"line 6: {ALICE}, {CHECKPOINT}: unknown kind 'gossip': one of patch, upgrade, bulletin",
    ]
    assert state_of(rt, ALICE) == "active"
    assert state_of(rt, BERND) == "active"
    # The good rows again: nothing changes, and nothing is refused (exit status 0)
    csv.write_text(f"email,product,kinds\n{ALICE},{FORTIGATE},patch\n{BERND},{FORTIGATE},\n")
    assert gateway_cli("subscriptions", "import", str(csv)) == "0 added, 2 unchanged, 0 refused\n"


def test_import_needs_its_columns(gateway_cli: Run, tmp_path: Path) -> None:
    csv = tmp_path / "subs.csv"
    csv.write_text("address,name\nx@y.example,X\n")
    assert "email, product, kinds" in gateway_cli("subscriptions", "import", str(csv), code=2)


def test_resume_reactivates_a_suspended_subscription_with_a_fresh_score(
    gateway_cli: Run, rt: Runtime
) -> None:
    subscription_id = subscribed(rt, ALICE)
    with rt.sessions.begin() as session:
        found = session.get_one(Subscription, subscription_id)
        found.bounce_score = 5.0
        move(session, found, SubscriptionState.suspended, Change("bounces", How.bounce, rt.now()))
    assert "resumed" in gateway_cli("subscriptions", "resume", ALICE, "--product", FORTIGATE)
    listed = as_json(gateway_cli, "subscriptions", "list")
    assert [(r["state"], r["bounce_score"]) for r in listed] == [("active", 0.0)]
    assert trail(rt, ALICE)[-1][:4] == ("suspended", "active", f"cli:{getpass.getuser()}", "cli")
    out = gateway_cli("subscriptions", "resume", ALICE, "--product", FORTIGATE, code=2)
    assert "is active" in out


def test_requests_by_mail_are_approved_and_denied_on_the_command_line(
    make_gateway: Callable[..., Gateway], sink: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A running gateway whose sweep sends what the command line writes, on the command line's
    # own clock (the time of day)
    gateway = make_gateway(requeue_after=0.5, clock=OffsetClock(datetime.now(UTC)))
    run = use_database(monkeypatch, gateway.settings.database, gateway.settings.var_dir)
    rt = gateway.runtime
    for sender, subject in ((ALICE, "Subscribe me to SUS"), (BERND, "SUS abonnieren")):
        asked = mail(sender=sender, subject=subject, message_id=f"<ask@{sender.split('@')[1]}>")
        assert gateway.send(asked, mail_from=sender).code == 250
    sink.wait_to(ADMIN_MAIL, 2)
    pending = as_json(run, "subscriptions", "requests")
    assert [(r["email"], r["action"], r["products"], r["state"]) for r in pending] == [
        (ALICE, "subscribe", FORTIGATE, "pending"),
        (BERND, "subscribe", FORTIGATE, "pending"),
    ]
    alice_request, bernd_request = (str(r["id"]) for r in pending)
    # deny needs a reason, which the contact is told
    run("subscriptions", "deny", bernd_request, code=2)
    assert "--reason must say why" in run(
        "subscriptions", "deny", bernd_request, "--reason", " ", code=2
    )
    assert "approved" in run("subscriptions", "approve", alice_request)
    assert "denied" in run("subscriptions", "deny", bernd_request, "--reason", "no contract")
    assert state_of(rt, ALICE) == "active"
    assert state_of(rt, BERND) == "unsubscribed"
    # Then each contact gets its one confirmation, threaded under its own request
    alice = sink.wait_to(ALICE)
    bernd = sink.wait_to(BERND)
    assert [m.message["Subject"] for m in alice] == ["Support Update Service: you are subscribed"]
    assert alice[0].message["In-Reply-To"] == "<ask@example.com>"
    assert "no contract" in bernd[0].text
    # And the decisions are recorded, and cannot be made twice
    assert "is approved, not pending" in run("subscriptions", "approve", alice_request, code=2)
    assert "no subscription request 999" in run("subscriptions", "approve", "999", code=2)
    assert as_json(run, "subscriptions", "requests") == []
    every = as_json(run, "subscriptions", "requests", "--all")
    assert [(r["state"], r["decided_by"], r["reason"]) for r in every] == [
        ("approved", f"cli:{getpass.getuser()}", ""),
        ("denied", f"cli:{getpass.getuser()}", "no contract"),
    ]
    assert [t[1:4] for t in trail(rt, ALICE)] == [
        ("pending", ALICE, "mail"),
        ("active", f"cli:{getpass.getuser()}", "cli"),
    ]
    sink.settle()
    assert count(gateway, Delivery, Delivery.template == "sus_confirmation") == 2
    assert count(gateway, SubscriptionRequest) == 2


def test_the_commands_on_postgresql(
    make_gateway: Callable[..., Gateway], monkeypatch: pytest.MonkeyPatch, postgres_url: str
) -> None:
    gateway = make_gateway(database_url=postgres_url)
    run = use_database(monkeypatch, postgres_url, gateway.settings.var_dir)
    run("subscriptions", "add", ALICE, "--product", FORTIGATE, "--kind", "bulletin")
    run("subscriptions", "remove", ALICE, "--product", FORTIGATE)
    history = as_json(run, "subscriptions", "history", ALICE)
    assert [(h["to"], h["kinds"], h["how"]) for h in history] == [
        ("active", "bulletin", "cli"),
        ("unsubscribed", "bulletin", "cli"),
    ]
