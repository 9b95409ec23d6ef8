"""R4.2: subscription requests by mail, in English, German and French, through the real listener:
unsubscribing at once, subscribing by policy (`immediate`, or `admin` until an admin approves or
denies by mail), one confirmation each, never an SR or an acknowledgement; R4.3: the
List-Unsubscribe mailto's `unsubscribe TOKEN`."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from gateway.directory.queries import Sender
from gateway.intake.triage import decide
from gateway.requests.decision import Action, Facts
from gateway.storage.models import Delivery, ServiceRequest, StoredMail, SubscriptionRequest
from gateway.sus import tokens
from gateway.sus.mail import SusFacts
from parsers.mail import parse
from parsers.sus import Asked, asked_in_subject
from tests.conftest import FIXTURES
from tests.support.harness import Gateway, count, mail
from tests.support.sink import Received, Sink
from tests.support.sus import CHECKPOINT, FORTIGATE, SETUP, state_of, subscribed, trail

SUS = "sus@securecall.example"
ADMIN = "sus-admin@securecall.example"
ALICE, BERND, CHLOE = "alice@example.com", "bernd@example.de", "chloe@example.fr"
STRANGER = "who@nowhere.example"


def stored_as(reply_text: str) -> int:
    return int(re.search(r"stored as (\d+)", reply_text).group(1))


def no_request_was_opened(gateway: Gateway) -> None:
    """No SR, and none of the mails an SR brings: no acknowledgement, no SOC copy."""
    assert count(gateway, ServiceRequest) == 0
    assert (
        count(gateway, Delivery, Delivery.template.in_(("request_opened", "customer_replied"))) == 0
    )


SUBSCRIBE_SUBJECTS = [
    (ALICE, "Please subscribe me to SUS"),
    (BERND, "Bitte SUS abonnieren"),
    (CHLOE, "Abonnement au service de mise à jour du support"),
]
UNSUBSCRIBE_SUBJECTS = [
    (ALICE, "Unsubscribe me from the update notifications"),
    (BERND, "Update-Benachrichtigungen abbestellen"),
    (CHLOE, "Me désabonner des bulletins"),
]


@pytest.mark.parametrize(("sender", "subject"), SUBSCRIBE_SUBJECTS, ids=["en", "de", "fr"])
def test_a_contact_is_subscribed_at_once_under_the_immediate_policy(
    make_gateway: Callable[..., Gateway], sink: Sink, sender: str, subject: str
) -> None:
    gateway = make_gateway(sus_subscribe_policy="immediate")
    # When a contact asks, in its language, at the support address
    reply = gateway.send(mail(sender=sender, subject=subject, body="Thanks.\n"), mail_from=sender)
    assert reply.code == 250
    # Then every covered product of the customer is subscribed (the expired one is not)
    assert state_of(gateway.runtime, sender) == "active"
    assert state_of(gateway.runtime, sender, CHECKPOINT) is None
    # And the contact gets one confirmation, in English (R1.11), and nothing else
    confirmation = sink.settle_to(sender)
    assert len(confirmation) == 1
    assert confirmation[0].message["Subject"] == "Support Update Service: you are subscribed"
    assert FORTIGATE in confirmation[0].text
    assert "not liable" in confirmation[0].text  # §3.8: the manufacturers' information
    no_request_was_opened(gateway)
    assert sink.to(ADMIN) == []
    with gateway.runtime.sessions.begin() as session:
        assert session.get_one(StoredMail, stored_as(reply.text)).status == "accepted"
        kept = session.query(SubscriptionRequest).one()
        assert (kept.action, kept.state) == ("subscribe", "done")


@pytest.mark.parametrize(("sender", "subject"), UNSUBSCRIBE_SUBJECTS, ids=["en", "de", "fr"])
def test_an_unsubscribe_by_mail_takes_effect_at_once_and_is_confirmed(
    gateway: Gateway, sink: Sink, sender: str, subject: str
) -> None:
    subscribed(gateway.runtime, sender)
    # When the contact asks to stop (the admin policy holds up subscribing only)
    message_id = f"<stop-{sender}>"
    sent = mail(sender=sender, subject=subject, message_id=message_id, body="Merci.\n")
    assert gateway.send(sent, mail_from=sender).code == 250
    # Then it is unsubscribed at once, by the contact, by mail, with the Message-ID that asked
    assert state_of(gateway.runtime, sender) == "unsubscribed"
    assert trail(gateway.runtime, sender)[-1] == (
        "active",
        "unsubscribed",
        sender,
        "mail",
        message_id,
    )
    confirmation = sink.settle_to(sender)
    assert [m.message["Subject"] for m in confirmation] == [
        "Support Update Service: you are unsubscribed"
    ]
    assert confirmation[0].message["In-Reply-To"] == message_id  # in the contact's own thread
    no_request_was_opened(gateway)


def test_under_the_admin_policy_a_subscription_waits_until_an_admin_approves_by_mail(
    gateway: Gateway, sink: Sink
) -> None:
    # When a contact writes to the SUS address, naming a product
    asked = mail(sender=BERND, to=SUS, subject="SUS", message_id="<ask@example.de>",
                 body="Bitte für FortiGate 600E abonnieren.\n")  # fmt: skip
    assert gateway.send(asked, mail_from=BERND, rcpt=SUS).code == 250
    # Then it waits, pending; the admin is told; the contact hears nothing yet
    assert state_of(gateway.runtime, BERND) == "pending"
    notice = sink.wait_to(ADMIN)[0]
    assert "asks to subscribe" in notice.message["Subject"]
    assert FORTIGATE in notice.text
    assert "#approve" in notice.text
    # When the admin answers the notice with #approve
    answered = admin_answer(notice, "#approve\n\nfine by me")
    assert gateway.send(answered, mail_from=ADMIN).code == 250
    # Then it is active, by the admin, by mail; the contact gets its one confirmation
    assert state_of(gateway.runtime, BERND) == "active"
    assert trail(gateway.runtime, BERND) == [
        (None, "pending", BERND, "mail", "<ask@example.de>"),
        ("pending", "active", ADMIN, "mail", "<approve@securecall.example>"),
    ]
    confirmation = sink.settle_to(BERND)
    assert [m.message["Subject"] for m in confirmation] == [
        "Support Update Service: you are subscribed"
    ]
    assert confirmation[0].message["In-Reply-To"] == "<ask@example.de>"
    result = [m for m in sink.to(ADMIN) if m is not notice]
    assert len(result) == 1
    assert result[0].message["Subject"].endswith(": done")
    no_request_was_opened(gateway)


def test_an_admin_denies_by_mail_with_a_reason_the_contact_is_told(
    gateway: Gateway, sink: Sink
) -> None:
    asked = mail(sender=CHLOE, subject="Inscription au SUS", message_id="<ask@example.fr>")
    assert gateway.send(asked, mail_from=CHLOE).code == 250
    notice = sink.wait_to(ADMIN)[0]
    assert "Their mail: Inscription au SUS" in notice.text
    answered = admin_answer(notice, "#deny your contract ends this month")
    assert gateway.send(answered, mail_from=ADMIN).code == 250
    assert state_of(gateway.runtime, CHLOE) == "unsubscribed"
    confirmation = sink.settle_to(CHLOE)
    assert [m.message["Subject"] for m in confirmation] == [
        "Support Update Service: your request was declined"
    ]
    assert "your contract ends this month" in confirmation[0].text
    # And a second answer to the same notice changes nothing, and says why
    again = admin_answer(notice, "#approve", message_id="<again@securecall.example>")
    assert gateway.send(again, mail_from=ADMIN).code == 250
    assert state_of(gateway.runtime, CHLOE) == "unsubscribed"
    refusal = sink.settle_to(ADMIN)[-1]
    assert refusal.message["Subject"].endswith(": REFUSED")
    assert "denied, not pending" in refusal.text


def test_a_deny_needs_a_reason_and_only_an_admin_answers_a_notice(
    gateway: Gateway, sink: Sink
) -> None:
    assert gateway.send(mail(sender=ALICE, to=SUS, subject="subscribe"), rcpt=SUS).code == 250
    notice = sink.wait_to(ADMIN)[0]
    assert gateway.send(admin_answer(notice, "#deny"), mail_from=ADMIN).code == 250
    assert "needs a reason" in sink.wait_to(ADMIN, 2)[-1].text
    # A contact answering the notice it was shown (forwarded, say) approves nothing
    forged = admin_answer(notice, "#approve", sender=ALICE, message_id="<forged@example.com>")
    assert gateway.send(forged, mail_from=ALICE).code == 250
    assert state_of(gateway.runtime, ALICE) == "pending"


def test_products_named_are_matched_like_entitlements_and_refused_when_not_covered(
    make_gateway: Callable[..., Gateway], sink: Sink
) -> None:
    gateway = make_gateway(sus_subscribe_policy="immediate")
    asked = mail(subject="Subscribe to SUS", body="For CP6200-77-4411 and FG6H0E5819900001.\n")
    assert gateway.send(asked).code == 250
    assert state_of(gateway.runtime, ALICE) == "active"
    assert state_of(gateway.runtime, ALICE, CHECKPOINT) is None
    confirmation = sink.settle_to(ALICE)[0].text
    assert "Check Point 6200: its entitlement has expired" in confirmation


def test_an_unsubscribe_token_by_mail_works_whoever_sends_it_and_tells_the_subscriber(
    gateway: Gateway, sink: Sink
) -> None:
    subscription = subscribed(gateway.runtime, ALICE)
    token = tokens.sign(subscription, dict(gateway.runtime.keys))
    # When the List-Unsubscribe mailto arrives, from an address that is no contact (RFC 2369)
    sent = mail(sender=STRANGER, to=SUS, subject=f"unsubscribe {token}", message_id="<u@x>")
    assert gateway.send(sent, mail_from=STRANGER, rcpt=SUS).code == 250
    assert state_of(gateway.runtime, ALICE) == "unsubscribed"
    assert trail(gateway.runtime, ALICE)[-1] == (
        "active",
        "unsubscribed",
        STRANGER,
        "mail",
        "<u@x>",
    )
    # Then the subscriber is told, and the sender nothing at all
    sink.settle()
    assert len(sink.to(ALICE)) == 1
    assert sink.to(STRANGER) == []
    # And the same mail again (a second click) changes nothing and sends nothing
    again = mail(sender=STRANGER, to=SUS, subject=f"unsubscribe {token}", message_id="<u2@x>")
    assert gateway.send(again, mail_from=STRANGER, rcpt=SUS).code == 250
    sink.settle()
    assert len(sink.to(ALICE)) == 1
    no_request_was_opened(gateway)


def test_a_forged_or_altered_token_unsubscribes_nobody(gateway: Gateway, sink: Sink) -> None:
    subscription = subscribed(gateway.runtime, ALICE)
    other = subscribed(gateway.runtime, BERND)
    token = tokens.sign(subscription, dict(gateway.runtime.keys))
    altered = f"{other}.{token.split('.', 1)[1]}"  # Bernd's id with Alice's MAC
    for forged in (altered, f"{other}.k1.{'0' * 32}"):
        sent = mail(sender=STRANGER, to=SUS, subject=f"unsubscribe {forged}")
        assert gateway.send(sent, mail_from=STRANGER, rcpt=SUS).code == 250
    assert state_of(gateway.runtime, ALICE) == "active"
    assert state_of(gateway.runtime, BERND) == "active"
    assert sink.settle_to(BERND) == []


def test_someone_who_is_no_contact_gets_the_unregistered_sender_notice_and_nothing_else(
    gateway: Gateway, sink: Sink
) -> None:
    sent = mail(sender=STRANGER, to=SUS, subject="Subscribe me to SUS")
    assert gateway.send(sent, mail_from=STRANGER, rcpt=SUS).code == 250
    notices = sink.settle_to(STRANGER)
    assert [m.message["Subject"] for m in notices] == ["Your message to SecureCall support"]
    assert count(gateway, SubscriptionRequest) == 0
    assert sink.to(ADMIN) == []


def test_a_mail_to_the_sus_address_that_asks_nothing_clear_is_answered_with_how_to_ask(
    gateway: Gateway, sink: Sink
) -> None:
    assert (
        gateway.send(mail(to=SUS, subject="SUS", body="Hello, what is this?\n"), rcpt=SUS).code
        == 250
    )
    answer = sink.settle_to(ALICE)
    assert [m.message["Subject"] for m in answer] == [
        "Support Update Service: what would you like us to do?"
    ]
    no_request_was_opened(gateway)


def test_automatic_mail_to_the_sus_address_changes_nothing_and_is_not_answered(
    gateway: Gateway, sink: Sink
) -> None:
    subscribed(gateway.runtime, ALICE)
    auto = mail(
        to=SUS, subject="Automatic reply: unsubscribe", headers={"Auto-Submitted": "auto-replied"}
    )
    assert gateway.send(auto, rcpt=SUS).code == 250
    assert state_of(gateway.runtime, ALICE) == "active"
    assert sink.settle_to(ALICE) == []


def test_the_admin_flow_on_postgresql(
    make_gateway: Callable[..., Gateway], sink: Sink, postgres_url: str
) -> None:
    gateway = make_gateway(database_url=postgres_url)
    asked = mail(sender=BERND, subject="SUS abonnieren", message_id="<pg@example.de>")
    assert gateway.send(asked, mail_from=BERND).code == 250
    notice = sink.wait_to(ADMIN)[0]
    assert gateway.send(admin_answer(notice, "#approve"), mail_from=ADMIN).code == 250
    assert state_of(gateway.runtime, BERND) == "active"
    assert [m.message["Subject"] for m in sink.settle_to(BERND)] == [
        "Support Update Service: you are subscribed"
    ]
    assert [t[1:4] for t in trail(gateway.runtime, BERND)] == [
        ("pending", BERND, "mail"),
        ("active", ADMIN, "mail"),
    ]
    assert SETUP not in {t[2] for t in trail(gateway.runtime, BERND)}


def admin_answer(
    notice: Received,
    body: str,
    *,
    sender: str = ADMIN,
    message_id: str = "<approve@securecall.example>",
) -> bytes:
    """An admin's answer to a request's notice, as a mail client writes it."""
    quoted = "\n".join(f"> {line}" for line in notice.text.splitlines())
    return mail(
        sender=sender,
        subject=f"Re: {notice.message['Subject']}",
        body=f"{body}\n\nOn Wed, SecureCall wrote:\n{quoted}\n",
        message_id=message_id,
        in_reply_to=notice.message["Message-ID"],
        references=notice.message["Message-ID"],
    )


# --- the triage table's rules for the Support Update Service ---------------------------------

CONTACT = Sender("contact", ALICE, "Alice", customer_id=1, contact_id=1)
UNKNOWN = Sender("unknown", STRANGER)


def sus_facts(sender: Sender = CONTACT, **given: Any) -> Facts:
    authenticated = given.pop("authenticated", True)
    automatic = given.pop("automatic", None)
    parsed = parse(mail(sender=sender.address, subject=given.pop("subject", "x")))
    return Facts(
        mail=parsed,
        now=datetime(2026, 11, 18, tzinfo=UTC),
        sender=sender,
        thread=None,
        foreign_thread=False,
        automatic=automatic,
        bounce=None,
        looped=False,
        requested=None,
        noticed_recently=False,
        authenticated=authenticated,
        sus=SusFacts(**given),
    )


ASKED = Asked("subscribe", "subscribe")


@pytest.mark.parametrize(
    ("facts", "action", "notices"),
    [
        (sus_facts(asked=ASKED), Action.SUBSCRIPTION, []),
        (sus_facts(asked=ASKED, authenticated=False), Action.HOLD, []),
        (sus_facts(asked=ASKED, automatic="Auto-Submitted: auto-replied"), Action.HOLD, []),
        (sus_facts(UNKNOWN, to_sus_address=True), Action.HOLD, ["sender_unregistered/customer"]),
        (sus_facts(UNKNOWN, token_subscription=41, authenticated=False), Action.UNSUBSCRIBE, []),
        (sus_facts(UNKNOWN, answers_request=3), Action.APPROVAL, []),
        (sus_facts(UNKNOWN, answers_request=3, authenticated=False), Action.HOLD, []),
        (sus_facts(to_bounce_address=True), Action.HOLD, []),
    ],
    ids=[
        "contact-asks",
        "unproven-contact",
        "automatic",
        "stranger",
        "token-from-anyone",
        "admin-answers",
        "unproven-admin",
        "to-a-return-path",
    ],
)
def test_the_triage_table_sends_sus_mail_to_its_own_actions(
    facts: Facts, action: Action, notices: list[str]
) -> None:
    decision = decide(facts)
    assert decision.action == action
    assert [f"{n.template}/{n.audience}" for n in decision.notices] == notices


def test_a_feedback_report_is_a_complaint_and_held() -> None:
    report = parse((FIXTURES / "feedback_arf_en.eml").read_bytes())
    facts = replace(sus_facts(UNKNOWN), mail=report, automatic="ARF")
    assert decide(facts).action == Action.COMPLAINT


@pytest.mark.parametrize(
    ("subject", "action"),
    [
        ("Please subscribe me to SUS", "subscribe"),
        ("Unsubscribe me from the update notifications", "unsubscribe"),
        ("SUS abonnieren", "subscribe"),
        ("Kündigung des SUS-Abonnements", "unsubscribe"),
        ("Update-Benachrichtigungen nicht mehr zusenden", "unsubscribe"),
        ("Abonnement au SUS", "subscribe"),
        ("Désabonnement des bulletins", "unsubscribe"),
        ("Re: [SR-7KQM-29XD] FortiGuard subscription expired", None),
        ("FortiGate update service stopped working", None),
        ("Cannot register for the portal", None),
        ("VPN tunnel down", None),
    ],
)
def test_a_subject_asks_something_of_sus_only_when_it_names_the_service(
    subject: str, action: str | None
) -> None:
    asked = asked_in_subject(subject)
    assert (asked.action if asked else None) == action
