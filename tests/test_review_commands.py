"""`gateway review show|release|dismiss`: an administrator acts on what is held (R1.8, R6.4).

The commands run in this process against the database of a real running gateway, whose sweep
sends what they write (the command's own broker is in-process, as without GATEWAY_BROKER_URL).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from typer.testing import CliRunner

from cli.app import app
from gateway.storage.models import Delivery, ServiceRequest, StoredMail
from tests.support.harness import Gateway, OffsetClock, count, mail, sr_id_of
from tests.support.sink import Sink

NINA = "nina@example.com"  # example.com: the demo customer's domain, its policy `none`


@pytest.fixture
def admin(make_gateway: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[Gateway, Callable[..., Any]]:
    """A running gateway (on real time, like the command) and `gateway …` on its database."""
    gateway: Gateway = make_gateway(clock=OffsetClock(datetime.now(UTC)), requeue_after=0.5)
    monkeypatch.setenv("GATEWAY_DATABASE_URL", gateway.settings.database)
    monkeypatch.setenv("GATEWAY_VAR_DIR", str(gateway.settings.var_dir))
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> Any:
        result = runner.invoke(app, list(args), catch_exceptions=False)
        assert result.exit_code == code, result.output
        return json.loads(result.stdout) if "--json" in args else result.output

    return gateway, run


def held_id(run: Callable[..., Any], sender: str, status: str = "review") -> int:
    (row,) = [r for r in run("review", "list", "--status", status, "--json") if r["from"] == sender]
    return int(row["id"])


def test_a_held_mail_is_released_once_its_sender_is_a_contact(
    admin: tuple[Gateway, Callable[..., Any]], sink: Sink
) -> None:
    gateway, run = admin
    data = mail(sender=NINA, subject="Failover test tonight", body="Please watch the cluster.\n")
    assert gateway.send(data, mail_from=NINA).code == 250
    sink.wait_to(NINA)  # the unregistered-sender notice
    stored_id = held_id(run, NINA)
    shown = run("review", "show", str(stored_id), "--json")
    assert (shown["status"], shown["reason"], shown["subject"]) == (
        "review",
        "an unregistered sender",
        "Failover test tonight",
    )
    assert "Please watch the cluster." in shown["text"]
    printed = run("review", "show", str(stored_id))
    assert "an unregistered sender" in printed
    assert "verdict      none" in printed  # example.com's policy is none: nothing was checked
    assert "Please watch the cluster." in printed
    # Not a contact yet: releasing changes nothing, and sends nothing
    deliveries = count(gateway, Delivery)
    still = run("review", "release", str(stored_id), "--json", code=1)
    assert (still["outcome"], still["stored_id"]) == ("hold", stored_id)
    assert count(gateway, Delivery) == deliveries
    assert held_id(run, NINA) == stored_id
    # Now she is one: the same mail opens its SR and she is acknowledged
    run("contacts", "add", NINA, "--customer", "Example Corp", "--name", "Nina N")
    released = run("review", "release", str(stored_id), "--json")
    assert released["outcome"] == "open"
    _notice, ack = sink.wait_to(NINA, count=2)
    assert sr_id_of(ack) == released["sr_id"]
    assert ack.message["In-Reply-To"] == data.split(b"Message-ID: ")[1].split(b"\r\n")[0].decode()
    assert run("review", "list", "--json") == []
    assert count(gateway, ServiceRequest) == 1
    assert count(gateway, StoredMail) == 1  # the held copy made way for the processed one


def test_a_dismissed_mail_leaves_the_review_queue_and_is_kept(
    admin: tuple[Gateway, Callable[..., Any]], sink: Sink
) -> None:
    gateway, run = admin
    stranger = "newsletter@vendor.example"
    assert gateway.send(mail(sender=stranger, subject="Our offers"), mail_from=stranger).code == 250
    stored_id = held_id(run, stranger)
    assert run("review", "dismiss", str(stored_id), "--json") == {
        "stored_id": stored_id,
        "status": "dismissed",
    }
    assert run("review", "list", "--json") == []
    assert held_id(run, stranger, status="dismissed") == stored_id
    assert count(gateway, StoredMail) == 1
    assert "no held mail" in run("review", "dismiss", str(stored_id), code=2)


def test_only_held_mail_can_be_released(
    admin: tuple[Gateway, Callable[..., Any]], sink: Sink
) -> None:
    gateway, run = admin
    reply = gateway.send(mail())
    accepted = int(reply.text.rsplit(" ", 1)[1])
    assert f"no held mail {accepted}" in run("review", "release", str(accepted), code=2)
    assert "no stored mail 999" in run("review", "show", "999", code=2)
