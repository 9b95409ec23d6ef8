"""R4.4: bounces of bulletins, by VERP and by the DSNs of eight MTAs (tests/fixtures/emails,
expected.sus.json), scored as Mailman scores them: one increment per address and day, stale after
7 days, suspension at 5 with a report to the admins; refusals at send time count; a later
delivery resumes; an ARF complaint unsubscribes at once; bounces of acknowledgements are kept
with the contact. Nothing of this is ever answered."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from gateway import clock as gateway_clock
from gateway.storage.models import Bounce, Contact, Delivery, ServiceRequest, StoredMail
from gateway.sus import verp
from tests.conftest import FIXTURES
from tests.support.harness import INTAKE, Gateway, OffsetClock, count, eventually, mail
from tests.support.sink import Sink
from tests.support.sus import bulletin_sent, subscribed, subscription_row, trail

EXPECTED: dict[str, dict[str, Any]] = json.loads((FIXTURES / "expected.sus.json").read_text())
BOUNCES = sorted(n for n, e in EXPECTED.items() if e["kind"] == "bounce" and e["counts"])
# What each fixture names: the bulletin's VERP return path (of Delivery 7) and its Message-ID.
FIXTURE_PATH = "bounces+7.k1.1bef166717059af7d6cc@securecall.example"
FIXTURE_MESSAGE_ID = "<bulletin-3.b4e25bb871e7e503.k1.4ee6c9a9bae89ef88938@securecall.example>"
ADMIN = "sus-admin@securecall.example"
ALICE, BERND = "alice@example.com", "bernd@example.de"
DAY = timedelta(days=1)


def returned(name: str, path: str, message_id: str, unique: str) -> bytes:
    """The fixture as it comes back for this test's own Delivery; its own Message-ID made
    unique, so that each day's bounce is a mail of its own (not a duplicate, R6.2)."""
    data = (FIXTURES / name).read_bytes()
    own = EXPECTED[name]["message_id"]
    data = data.replace(own.encode(), own.replace("@", f".{unique}@").encode(), 1)
    data = data.replace(FIXTURE_PATH.encode(), path.encode())
    return data.replace(FIXTURE_MESSAGE_ID.encode(), message_id.encode())


def send(gateway: Gateway, data: bytes, rcpt: str, mail_from: str = "") -> StoredMail:
    reply = gateway.send(data, mail_from=mail_from, rcpt=rcpt)
    assert reply.code == 250, reply
    stored_id = int(re.search(r"stored as (\d+)", reply.text).group(1))
    with gateway.runtime.sessions.begin() as session:
        stored = session.get_one(StoredMail, stored_id)
        session.expunge(stored)
    return stored


def mails_written(gateway: Gateway) -> list[tuple[str, str]]:
    """(template, recipient) of every Delivery but the bulletins the test wrote itself."""
    with gateway.runtime.sessions.begin() as session:
        rows = session.execute(
            select(Delivery.template, Delivery.recipient)
            .where(Delivery.queue != "bulk")
            .order_by(Delivery.id)
        ).all()
    return [tuple(row) for row in rows]  # type: ignore[misc]


def contact_bounce(gateway: Gateway, email: str) -> tuple[Any, str | None]:
    with gateway.runtime.sessions.begin() as session:
        contact = session.scalars(select(Contact).where(Contact.email == email)).one()
        return contact.bounced_at, contact.bounce_reason


def test_the_bounce_corpus_has_eight_mta_styles_a_warning_and_a_complaint() -> None:
    assert len({EXPECTED[n]["mta"] for n in BOUNCES}) >= 8
    assert any(not e["counts"] and e["kind"] == "bounce" for e in EXPECTED.values())
    assert any(e["kind"] == "complaint" for e in EXPECTED.values())
    for name in EXPECTED:
        assert FIXTURE_PATH.encode() in (FIXTURES / name).read_bytes(), name


@pytest.mark.parametrize("name", BOUNCES)
def test_a_subscriber_whose_bulletins_keep_bouncing_is_suspended_at_the_threshold(
    make_gateway: Callable[..., Gateway], sink: Sink, name: str
) -> None:
    clock = OffsetClock()
    gateway = make_gateway(clock=clock)
    rt, who = gateway.runtime, EXPECTED[name]["subscriber"]
    subscription = subscribed(rt, who)
    for day in range(1, 6):
        # Given a bulletin to the subscriber, When its bounce comes back to the VERP address
        _, message_id, path = bulletin_sent(rt, subscription)
        stored = send(gateway, returned(name, path, message_id, f"d{day}"), rcpt=path)
        assert stored.status == "bounce"
        if day == 1:  # a second bounce the same day does not count again
            _, again_id, again_path = bulletin_sent(rt, subscription)
            send(gateway, returned(name, again_path, again_id, "again"), rcpt=again_path)
        # Then the score rises by one a day, and at 5 the subscription is suspended
        row = subscription_row(rt, subscription)
        assert (row["score"], row["state"]) == (day, "suspended" if day == 5 else "active")
        clock.advance(DAY)
    assert trail(rt, who)[-1] == ("active", "suspended", "bounces", "bounce", None)
    # And each admin gets one mail saying who and why; nobody else gets anything
    report = sink.wait_to(ADMIN)
    assert len(report) == 1
    assert who in report[0].message["Subject"]
    assert "FortiGate 600E" in report[0].text
    assert report[0].text.count(" verp ") == 5
    assert mails_written(gateway) == [("sus_suspended", ADMIN)]
    assert contact_bounce(gateway, who)[0] is not None
    assert count(gateway, ServiceRequest) == 0


def test_a_score_goes_stale_after_seven_days_and_starts_again(
    make_gateway: Callable[..., Gateway],
) -> None:
    clock = OffsetClock()
    gateway = make_gateway(clock=clock)
    rt = gateway.runtime
    subscription = subscribed(rt, ALICE)
    name = "sus_bounce_postfix_en.eml"
    for day in range(3):
        _, message_id, path = bulletin_sent(rt, subscription)
        send(gateway, returned(name, path, message_id, f"d{day}"), rcpt=path)
        clock.advance(DAY)
    assert subscription_row(rt, subscription)["score"] == 3
    clock.advance(8 * DAY)  # more than GATEWAY_SUS_BOUNCE_INFO_STALE_AFTER since the last
    _, message_id, path = bulletin_sent(rt, subscription)
    send(gateway, returned(name, path, message_id, "late"), rcpt=path)
    assert subscription_row(rt, subscription) | {"last_bounce_at": None} == {
        "state": "active",
        "score": 1.0,
        "last_bounce_at": None,
    }


def test_a_delayed_delivery_is_kept_but_never_counted(gateway: Gateway) -> None:
    rt = gateway.runtime
    subscription = subscribed(rt, ALICE)
    _, message_id, path = bulletin_sent(rt, subscription)
    name = "sus_bounce_delayed_en.eml"
    assert send(gateway, returned(name, path, message_id, "w"), rcpt=path).status == "bounce"
    assert subscription_row(rt, subscription)["score"] == 0
    assert contact_bounce(gateway, ALICE) == (None, None)
    with rt.sessions.begin() as session:
        kept = session.scalars(select(Bounce)).one()
        assert (kept.source, kept.permanent, kept.counted) == ("verp", False, False)
    assert mails_written(gateway) == []


def test_a_dsn_naming_no_mail_of_the_gateway_is_kept_with_its_failed_recipient_uncounted(
    make_gateway: Callable[..., Gateway],
) -> None:
    clock = OffsetClock()
    gateway = make_gateway(clock=clock)
    rt = gateway.runtime
    subscription = subscribed(rt, "dana@example.com")
    # No VERP address in it and no Message-ID the gateway signed: anyone could have written it
    for day in range(6):  # on more days than the threshold
        clock.advance(DAY)
        data = returned("sus_bounce_exchange_en.eml", INTAKE, f"<x{day}@nowhere.example>", "x")
        assert send(gateway, data, rcpt=INTAKE).status == "bounce"
    row = subscription_row(rt, subscription)
    assert (row["score"], row["state"]) == (0, "active")
    bounced_at, reason = contact_bounce(gateway, "dana@example.com")
    assert bounced_at is not None  # the SOC sees that the address may be dead
    assert reason.startswith("5.1.10")
    assert mails_written(gateway) == []


def test_a_report_to_a_subscribers_own_return_path_counts_against_him_alone(
    gateway: Gateway,
) -> None:
    rt = gateway.runtime
    alice = subscribed(rt, ALICE)
    bernd = subscribed(rt, BERND)
    _, _, path = bulletin_sent(rt, bernd)
    # Bernd's genuine return path, with a report whose failed recipient is Alice
    send(gateway, returned("sus_bounce_postfix_en.eml", path, "<x@y>", "own"), rcpt=path)
    assert subscription_row(rt, alice)["score"] == 0
    assert contact_bounce(gateway, ALICE) == (None, None)
    assert subscription_row(rt, bernd)["score"] == 1


def test_a_bounce_of_an_acknowledgement_is_kept_with_the_contact(
    gateway: Gateway, sink: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from cli.app import app

    # Given an acknowledgement to Alice
    assert gateway.send(mail(subject="VPN down")).code == 250
    ack = sink.wait_to(ALICE)[0]
    # When its bounce comes back to the support address, quoting its Message-ID
    data = returned("sus_bounce_postfix_en.eml", INTAKE, ack.message["Message-ID"], "ack")
    before = mails_written(gateway)
    assert send(gateway, data, rcpt=INTAKE).status == "bounce"
    # Then the contact shows the dead address, and no mail at all is written for the bounce
    assert mails_written(gateway) == before
    monkeypatch.setenv("GATEWAY_DATABASE_URL", gateway.settings.database)
    monkeypatch.setenv("GATEWAY_VAR_DIR", str(gateway.settings.var_dir))
    listed = json.loads(CliRunner().invoke(app, ["contacts", "list", "--json"]).output)
    alice = next(c for c in listed if c["email"] == ALICE)
    assert alice["bounced_at"] is not None
    assert "5.1.1" in alice["bounce_reason"]
    assert next(c for c in listed if c["email"] == BERND)["bounced_at"] is None


def test_a_forged_verp_address_counts_nothing_against_the_subscriber_it_names(
    gateway: Gateway,
) -> None:
    rt = gateway.runtime
    bernd = subscribed(rt, BERND)
    _, _, path = bulletin_sent(rt, bernd)
    forged = path.replace(path.split(".")[2].split("@")[0], "0" * 20)
    assert verp.is_verp(forged, "securecall.example")
    # The postfix fixture's failed recipient is Alice (no subscriber); Bernd's Delivery is named
    send(gateway, returned("sus_bounce_postfix_en.eml", forged, "<x@y>", "f"), rcpt=forged)
    assert subscription_row(rt, bernd)["score"] == 0
    assert contact_bounce(gateway, BERND) == (None, None)


def test_a_vacation_reply_to_a_return_path_is_held_and_counts_nothing(gateway: Gateway) -> None:
    rt = gateway.runtime
    subscription = subscribed(rt, ALICE)
    _, _, path = bulletin_sent(rt, subscription)
    reply = mail(subject="Out of Office: back on Monday", to=path)
    stored = send(gateway, reply, rcpt=path, mail_from=ALICE)
    assert stored.status == "review"
    assert subscription_row(rt, subscription)["score"] == 0
    assert count(gateway, ServiceRequest) == 0
    assert mails_written(gateway) == []


@pytest.mark.parametrize("database", ["sqlite_url", "postgres_url"])
def test_a_refusal_at_send_time_is_a_hard_bounce_and_a_given_up_4xx_is_not(
    make_gateway: Callable[..., Gateway], sink: Sink, database: str, request: pytest.FixtureRequest
) -> None:
    gateway = make_gateway(database_url=request.getfixturevalue(database), send_attempts=1)
    rt = gateway.runtime
    alice, bernd = subscribed(rt, ALICE), subscribed(rt, BERND)
    sink.refuse[ALICE] = "550 5.1.1 <alice@example.com>: no such user"
    sink.refuse[BERND] = "451 4.2.1 mailbox busy, try later"
    refused, _, _ = bulletin_sent(rt, alice, status="pending")
    busy, _, _ = bulletin_sent(rt, bernd, status="pending")
    # When the workers send them (the sweep hands them over) and the relay refuses
    eventually(lambda: count(gateway, Delivery, Delivery.status == "failed") == 2)
    # Then the clock's look counts the 5xx as a hard bounce, once, and the 4xx not at all
    for _ in range(2):
        gateway_clock.tick(rt)
    assert subscription_row(rt, alice)["score"] == 1
    assert subscription_row(rt, bernd)["score"] == 0
    with rt.sessions.begin() as session:
        kept = session.execute(
            select(Bounce.delivery_id, Bounce.source, Bounce.permanent, Bounce.counted).order_by(
                Bounce.delivery_id
            )
        ).all()
    assert [tuple(k) for k in kept] == [(refused, "smtp", True, True), (busy, "smtp", False, False)]
    assert contact_bounce(gateway, ALICE)[1].startswith(
        "refused at send time: PermanentFailure: 550"
    )


@pytest.mark.parametrize("database", ["sqlite_url", "postgres_url"])
def test_a_later_delivery_that_stands_resumes_a_suspended_subscription(
    make_gateway: Callable[..., Gateway], sink: Sink, database: str, request: pytest.FixtureRequest
) -> None:
    clock = OffsetClock()
    url = request.getfixturevalue(database)
    gateway = make_gateway(database_url=url, clock=clock, sus_bounce_score_threshold=1)
    rt = gateway.runtime
    subscription = subscribed(rt, ALICE)
    _, message_id, path = bulletin_sent(rt, subscription)
    send(gateway, returned("sus_bounce_postfix_en.eml", path, message_id, "s"), rcpt=path)
    assert subscription_row(rt, subscription)["state"] == "suspended"
    clock.advance(timedelta(hours=1))
    # When a later mail to the address is sent (an acknowledgement) and does not bounce
    assert gateway.send(mail(subject="Is the VPN advisory relevant?")).code == 250
    sink.wait_until(lambda mails: any(ALICE in m.rcpt_tos for m in mails))
    # the relay has it before the worker marks it sent: wait for the mark, not for a count
    unsent = Delivery.recipient == ALICE, Delivery.status.in_(("pending", "sending"))
    eventually(lambda: count(gateway, Delivery, *unsent) == 0)
    assert count(gateway, Delivery, Delivery.recipient == ALICE, Delivery.status == "sent") >= 2
    gateway_clock.tick(rt)
    assert subscription_row(rt, subscription)["state"] == "suspended"  # not yet: it may bounce
    clock.advance(timedelta(hours=25))
    gateway_clock.tick(rt)
    # Then the subscription is active again, by the bounce processor, with a fresh score
    assert subscription_row(rt, subscription) == {
        "state": "active",
        "score": 0.0,
        "last_bounce_at": None,
    }
    assert trail(rt, ALICE)[-1] == ("suspended", "active", "bounces", "bounce", None)


def test_an_arf_complaint_about_a_bulletin_unsubscribes_at_once(gateway: Gateway) -> None:
    rt = gateway.runtime
    subscription = subscribed(rt, BERND)
    _, message_id, path = bulletin_sent(rt, subscription)
    name = "sus_complaint_arf_en.eml"
    stored = send(
        gateway,
        returned(name, path, message_id, "c"),
        rcpt=path,
        mail_from="fbl@feedback.mailbox.example",
    )
    assert stored.status == "review"  # RFC 5965: still for a person to read
    assert subscription_row(rt, subscription)["state"] == "unsubscribed"
    own = EXPECTED[name]["message_id"].replace("@", ".c@")
    assert trail(rt, BERND)[-1] == ("active", "unsubscribed", "bounces", "bounce", own)
    assert mails_written(gateway) == []


def test_bounces_and_complaints_on_postgresql(
    make_gateway: Callable[..., Gateway], postgres_url: str
) -> None:
    clock = OffsetClock()
    gateway = make_gateway(database_url=postgres_url, clock=clock)
    rt = gateway.runtime
    alice, bernd = subscribed(rt, ALICE), subscribed(rt, BERND)
    for day in range(5):
        _, message_id, path = bulletin_sent(rt, alice)
        send(gateway, returned("sus_bounce_gmail_en.eml", path, message_id, f"{day}"), rcpt=path)
        clock.advance(DAY)
    assert subscription_row(rt, alice)["state"] == "suspended"
    _, message_id, path = bulletin_sent(rt, bernd)
    data = returned("sus_complaint_arf_en.eml", path, message_id, "pg")
    send(gateway, data, rcpt=path, mail_from="fbl@feedback.mailbox.example")
    assert subscription_row(rt, bernd)["state"] == "unsubscribed"
    assert mails_written(gateway) == [("sus_suspended", ADMIN)]
