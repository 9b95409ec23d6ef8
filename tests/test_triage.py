"""The triage table (R1.6, R1.8, R6.1): which rule decides, and which notices it sends."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.directory.queries import Sender
from gateway.intake.triage import decide
from gateway.requests.decision import Action, Facts, Thread
from parsers.commands import read_commands
from parsers.mail import parse
from parsers.signals import PriorityRequest
from tests.support.harness import mail

CONTACT = Sender("contact", "alice@example.com", "Alice", customer_id=1, contact_id=1)
SOC = Sender("soc", "analyst@securecall.example", "Sam")
STRANGER = Sender("unknown", "who@nowhere.example")


def facts(
    sender: Sender = CONTACT,
    *,
    state: str | None = None,
    automatic: str | None = None,
    bounce: str | None = None,
    looped: bool = False,
    p1: bool = False,
    noticed: bool = False,
    note: bool = False,
    commands: str = "",
) -> Facts:
    thread = Thread(1, "SR-7KQM-29XD", state, 1) if state else None
    return Facts(
        mail=parse(mail(sender=sender.address)),
        now=datetime(2026, 11, 18, tzinfo=UTC),
        sender=sender,
        thread=thread,
        foreign_thread=False,
        automatic=automatic,
        bounce=bounce,
        looped=looped,
        requested=PriorityRequest(1, "outage") if p1 else None,
        noticed_recently=noticed,
        to_note_address=note,
        commands=read_commands(commands),
    )


@pytest.mark.parametrize(
    ("given", "action", "notices"),
    [
        (facts(), Action.OPEN, ["request_opened/customer", "request_opened/soc"]),
        (
            facts(p1=True),
            Action.OPEN,
            ["request_opened/customer", "request_opened/soc", "priority1_requested/soc"],
        ),
        (facts(state="open"), Action.ADD, ["customer_replied/soc"]),
        (facts(state="waiting"), Action.ADD, ["customer_replied/soc"]),
        (facts(state="resolved"), Action.REOPEN, ["customer_replied/soc"]),
        (
            facts(state="closed"),
            Action.FOLLOW_UP,
            ["request_opened/customer", "request_opened/soc"],
        ),
        (facts(state="closed", automatic="Auto-Submitted: auto-replied"), Action.ADD, []),
        (facts(automatic="Precedence: bulk"), Action.HOLD, []),
        (facts(bounce="null envelope sender"), Action.BOUNCE, []),
        (facts(looped=True), Action.HOLD, []),
        (facts(SOC, state="open"), Action.ANSWER, []),
        (facts(SOC, state="open", note=True), Action.NOTE, []),
        (facts(SOC), Action.HOLD, []),
        (facts(SOC, commands="#priority 2\nplease"), Action.HOLD, ["command_result/soc"]),
        (facts(STRANGER), Action.HOLD, ["sender_unregistered/customer"]),
        (facts(STRANGER, noticed=True), Action.HOLD, []),
        (facts(STRANGER, automatic="Auto-Submitted: auto-replied"), Action.HOLD, []),
    ],
)
def test_the_first_matching_rule_decides(given: Facts, action: Action, notices: list[str]) -> None:
    decision = decide(given)
    assert decision.action is action
    assert [f"{n.template}/{n.audience}" for n in decision.notices] == notices
