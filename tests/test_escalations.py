"""Escalation (§3.5.5, R2.4): Duty Management, Account Manager, the requester; Director level."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from typer.testing import CliRunner

from cli.app import app
from gateway.sla import listings
from tests.support.harness import Gateway, OffsetClock, mail
from tests.support.sink import Sink
from tests.test_clock import ALICE, ANALYST, at, open_sr, soc_command

DUTY = "duty-management@securecall.example"
DIRECTORS = "soc-directors@securecall.example"
ACCOUNT_MANAGER = "dana@example.com"  # the demo customer's account manager
START = datetime(2026, 11, 18, 9, 0, tzinfo=UTC)


def escalations(gateway: Gateway) -> list[dict[str, Any]]:
    with gateway.runtime.sessions.begin() as session:
        return listings.escalations(session)


@pytest.mark.parametrize(
    ("subject", "body", "to"),
    [
        ("Re: [{sr}] still down - please escalate", "Nothing works since yesterday.", None),
        ("Re: [{sr}] VPN", "Bitte eskalieren Sie das.\nDer Tunnel ist weiterhin unten.", None),
        ("Re: [{sr}] VPN", "Merci d'escalader cette demande, c'est urgent.", None),
        ("Re: [{sr}] VPN", "We cannot wait any longer.", "escalation@securecall.example"),
    ],
    ids=["english-subject", "german-first-line", "french-first-line", "escalation-address"],
)
def test_a_customer_asking_to_escalate_alerts_duty_management_and_the_account_manager(
    make_gateway: Any, sink: Sink, subject: str, body: str, to: str | None
) -> None:
    gateway = make_gateway(clock=OffsetClock(START))
    sr_id = open_sr(gateway, sink)
    asking = mail(subject=subject.format(sr=sr_id), body=body, to=to or "soc@securecall.example")
    assert gateway.send(asking, rcpt=to or "soc@securecall.example").code == 250
    (alert,) = sink.wait_to(DUTY)
    assert alert.message["Subject"].startswith(f"[{sr_id}] ESCALATION to Duty Management")
    (notice,) = sink.wait_to(ACCOUNT_MANAGER)
    assert "as Account Manager of Example Corp" in notice.text
    told = sink.wait_to(ALICE, 2)[1]
    assert told.message["Subject"].startswith(f"[{sr_id}] Escalation recorded")
    assert (
        told.message["In-Reply-To"] == asking.split(b"Message-ID: ")[1].split(b"\r\n")[0].decode()
    )
    (escalation,) = escalations(gateway)
    assert (escalation["sr_id"], escalation["level"], escalation["source"]) == (
        sr_id,
        "duty_management",
        "customer",
    )
    assert [s["step"] for s in escalation["steps"]] == [
        "opened",
        "duty_management_alerted",
        "account_manager_notified",
        "requester_told",
    ]


@pytest.mark.parametrize(("priority", "after"), [(3, timedelta(days=3)), (1, timedelta(hours=24))])
def test_an_escalation_still_open_reaches_director_level_after_its_time_and_not_before(
    make_gateway: Any, sink: Sink, priority: int, after: timedelta
) -> None:
    gateway = make_gateway(clock=OffsetClock(START))
    sr_id = open_sr(gateway, sink)
    if priority == 1:
        soc_command(gateway, sr_id, "#priority 1")
    escalated_at = gateway.runtime.now()
    soc_command(gateway, sr_id, "#escalate customer called: production down")
    sink.wait_to(DUTY)
    at(gateway, escalated_at + after - timedelta(minutes=1))
    sink.settle()
    assert sink.to(DIRECTORS) == []
    at(gateway, escalated_at + after + timedelta(minutes=1))
    (director,) = sink.wait_to(DIRECTORS)
    assert director.message["Subject"].startswith(f"[{sr_id}] ESCALATION to Director level")
    assert "customer called: production down" in director.text
    (escalation,) = escalations(gateway)
    assert escalation["level"] == "director"
    assert escalation["steps"][-1]["step"] == "director_escalated"
    at(gateway, escalated_at + after * 4)
    assert len(sink.settle_to(DIRECTORS)) == 1


def test_a_closed_escalation_never_reaches_directors(make_gateway: Any, sink: Sink) -> None:
    gateway = make_gateway(clock=OffsetClock(START))
    sr_id = open_sr(gateway, sink)
    soc_command(gateway, sr_id, "#escalate")
    soc_command(gateway, sr_id, "#deescalate plan agreed with the customer")
    at(gateway, START + timedelta(days=5))
    sink.settle()
    assert sink.to(DIRECTORS) == []
    (escalation,) = escalations(gateway)
    assert escalation["closed_at"] is not None
    assert escalation["steps"][-1] == {
        "at": escalation["closed_at"],
        "step": "closed",
        "detail": f"{ANALYST}: plan agreed with the customer",
    }
    # two confirmations, sent by two worker threads: either may arrive first
    confirmations = [m.text for m in sink.wait_to(ANALYST, 2)]
    assert any("done     #deescalate" in text for text in confirmations), confirmations


def test_asking_again_is_recorded_on_the_open_escalation(make_gateway: Any, sink: Sink) -> None:
    gateway = make_gateway(clock=OffsetClock(START))
    sr_id = open_sr(gateway, sink)
    for _ in range(2):
        gateway.send(mail(subject=f"Re: [{sr_id}] please escalate", body="Still down."))
    (escalation,) = escalations(gateway)
    assert [s["step"] for s in escalation["steps"]][-2:] == ["requested_again", "requester_told"]
    assert len(sink.wait_to(DUTY)) == 1


def test_a_reply_repeating_the_word_or_taking_it_back_asks_for_no_new_escalation(
    make_gateway: Any, sink: Sink
) -> None:
    gateway = make_gateway(clock=OffsetClock(START))
    sr_id = open_sr(gateway, sink, subject="Please escalate: firewall down")
    (told,) = [m for m in sink.wait_to(ALICE, 2) if "Escalation recorded" in m.message["Subject"]]
    soc_command(gateway, sr_id, "#deescalate plan agreed by phone")
    replies = [
        # to the gateway's own "Escalation recorded" mail, whose subject holds the SR's title
        mail(subject=f"Re: {told.message['Subject']}", body="Thanks, that was quick."),
        mail(subject=f"Re: [{sr_id}] Please escalate: firewall down", body="Any news?"),
        mail(subject=f"Re: [{sr_id}] firewall", body="No need to escalate, it is not urgent."),
        mail(subject=f"AW: [{sr_id}] firewall", body="Bitte nicht eskalieren, danke."),
    ]
    for reply in replies:
        assert gateway.send(reply).code == 250
    assert [e["closed_at"] is not None for e in escalations(gateway)] == [True]
    # asked again in so many words: a new escalation
    again = mail(subject=f"Re: [{sr_id}] firewall", body="Please escalate again, it is down.")
    assert gateway.send(again).code == 250
    assert [e["closed_at"] is None for e in escalations(gateway)] == [True, False]
    assert len(sink.wait_to(DUTY, 2)) == 2


def test_escalations_are_listed_with_their_steps_as_json(
    gateway: Gateway, sink: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    sr_id = open_sr(gateway, sink)
    soc_command(gateway, sr_id, "#escalate")
    monkeypatch.setenv("GATEWAY_DATABASE_URL", gateway.settings.database)
    monkeypatch.setenv("GATEWAY_VAR_DIR", str(gateway.settings.var_dir))
    listed = json.loads(CliRunner().invoke(app, ["escalations", "list", "--json"]).output)
    assert [(e["sr_id"], e["source"], e["requested_by"]) for e in listed] == [
        (sr_id, "soc", ANALYST)
    ]
    assert listed[0]["steps"][0]["step"] == "opened"
    assert "ESCALATION" in sink.wait_to(DUTY)[0].message["Subject"]
