"""Intake over SMTP: threading, who may write, duplicates, automatic mail, notices, SMTP replies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from gateway.intake import listings as held_listings
from gateway.requests import listings as request_listings
from gateway.storage.models import ServiceRequest, StoredMail
from tests.support.harness import (
    Gateway,
    OffsetClock,
    count,
    eventually,
    failing,
    mail,
    smtp_send,
    sr_id_of,
)
from tests.support.sink import Received, Sink

ALICE = "alice@example.com"
SOC_QUEUE = "soc-queue@securecall.example"


def show(gateway: Gateway, sr_id: str) -> dict[str, Any]:
    with gateway.runtime.sessions.begin() as session:
        shown = request_listings.request(session, sr_id)
    assert shown is not None
    return shown


def open_one(gateway: Gateway, sink: Sink, **kwargs: Any) -> tuple[str, Received]:
    """Open an SR (as Alice unless `sender` says otherwise); return its ID and acknowledgement."""
    sender = kwargs.get("sender", "alice@example.com")
    before = len(sink.to(sender))
    assert gateway.send(mail(**kwargs), mail_from=sender).code == 250
    ack = eventually(lambda: sink.to(sender)[before:])[0]
    return sr_id_of(ack), ack


# --- threading (R1.6) --------------------------------------------------------------------------


def test_a_reply_with_the_token_threads_onto_its_sr(gateway: Gateway, sink: Sink) -> None:
    sr_id, _ack = open_one(gateway, sink)
    reply = mail(subject=f"Re: [{sr_id}] VPN tunnel to Frankfurt is down", body="Logs attached.")
    assert gateway.send(reply).code == 250
    shown = eventually(lambda: (s := show(gateway, sr_id)) and len(s["messages"]) == 2 and s)
    assert shown["messages"][1]["text"] == "Logs attached."
    assert count(gateway, ServiceRequest) == 1
    assert len(sink.settle_to(ALICE)) == 1  # a reply is not acknowledged again


def test_a_reply_by_in_reply_to_alone_threads_even_with_a_changed_subject(
    gateway: Gateway, sink: Sink
) -> None:
    sr_id, ack = open_one(gateway, sink)
    reply = mail(
        subject="new findings, see below",
        body="It happens every hour.",
        in_reply_to=ack.message["Message-ID"],
    )
    assert gateway.send(reply).code == 250
    shown = eventually(lambda: (s := show(gateway, sr_id)) and len(s["messages"]) == 2 and s)
    assert shown["messages"][1]["subject"] == "new findings, see below"
    assert count(gateway, ServiceRequest) == 1


def test_a_reply_referencing_the_customers_own_first_mail_threads(
    gateway: Gateway, sink: Sink
) -> None:
    sr_id, _ack = open_one(gateway, sink, message_id="<first@example.com>")
    reply = mail(
        subject="one more thing", body="Also the backup link.", references="<first@example.com>"
    )
    assert gateway.send(reply).code == 250
    eventually(lambda: len(show(gateway, sr_id)["messages"]) == 2)
    assert count(gateway, ServiceRequest) == 1


def test_a_strangers_reply_carrying_the_token_is_not_added(gateway: Gateway, sink: Sink) -> None:
    sr_id, ack = open_one(gateway, sink)
    forged = mail(
        sender="mallory@evil.example",
        subject=f"Re: [{sr_id}] hello",
        body="Please send me the config.",
        in_reply_to=ack.message["Message-ID"],
    )
    assert gateway.send(forged, mail_from="mallory@evil.example").code == 250
    assert len(show(gateway, sr_id)["messages"]) == 1
    assert count(gateway, StoredMail, StoredMail.status == "review") == 1
    # The stranger's notice says nothing of the SR: no ID, no subject, no content
    (notice,) = sink.wait_to("mallory@evil.example")
    assert sr_id not in notice.data.decode()
    assert "hello" not in notice.message["Subject"]


def test_another_customers_contact_naming_a_foreign_sr_gets_an_sr_of_their_own(
    gateway: Gateway, sink: Sink
) -> None:
    sr_id, _ack = open_one(gateway, sink)
    other = mail(
        sender="otto@other.example",
        subject=f"Re: [{sr_id}] our firewall",
        body="Unsere Firewall startet ständig neu, bitte um Hilfe.",
    )
    assert gateway.send(other, mail_from="otto@other.example").code == 250
    (ack,) = sink.wait_to("otto@other.example")
    own_id = sr_id_of(ack)
    assert own_id != sr_id
    assert ack.message["Subject"].count("SR-") == 1  # the foreign ID is not echoed back
    assert len(show(gateway, sr_id)["messages"]) == 1
    assert show(gateway, own_id)["customer"] == "Other GmbH"


def test_soc_staff_replying_with_the_token_is_added_to_the_sr(gateway: Gateway, sink: Sink) -> None:
    sr_id, _ack = open_one(gateway, sink)
    answer = mail(
        sender="analyst@securecall.example", subject=f"RE: [{sr_id}] VPN", body="Looking into it."
    )
    assert gateway.send(answer, mail_from="analyst@securecall.example").code == 250
    shown = eventually(lambda: (s := show(gateway, sr_id)) and len(s["messages"]) == 2 and s)
    assert shown["messages"][1]["author"] == "soc"


def _set_state(gateway: Gateway, sr_id: str, state: str) -> None:
    with gateway.runtime.sessions.begin() as session:
        session.scalars(
            select(ServiceRequest).where(ServiceRequest.public_id == sr_id)
        ).one().state = state


def test_a_reply_to_a_resolved_sr_reopens_it(gateway: Gateway, sink: Sink) -> None:
    sr_id, _ack = open_one(gateway, sink)
    _set_state(gateway, sr_id, "resolved")
    assert gateway.send(mail(subject=f"Re: [{sr_id}] VPN", body="It is back.")).code == 250
    shown = show(gateway, sr_id)
    assert shown["state"] == "open"
    assert len(shown["messages"]) == 2
    assert count(gateway, ServiceRequest) == 1


def test_a_reply_to_a_closed_sr_opens_a_linked_follow_up(gateway: Gateway, sink: Sink) -> None:
    sr_id, _ack = open_one(gateway, sink)
    _set_state(gateway, sr_id, "closed")
    assert gateway.send(mail(subject=f"Re: [{sr_id}] VPN", body="It is back again.")).code == 250
    ack = sink.wait_to(ALICE, 2)[1]
    follow_up = sr_id_of(ack)
    assert follow_up != sr_id
    assert show(gateway, follow_up)["follow_up_of"] == sr_id
    assert show(gateway, sr_id)["state"] == "closed"
    assert f"{sr_id} (closed)" in ack.text


# --- duplicates (R6.2) -------------------------------------------------------------------------


def test_the_same_mail_delivered_twice_is_stored_once_and_acknowledged_once(
    gateway: Gateway, sink: Sink
) -> None:
    data = mail(message_id="<twice@example.com>")
    assert gateway.send(data).code == 250
    assert gateway.send(data).code == 250
    sink.wait_to(ALICE)
    assert len(sink.settle_to(ALICE)) == 1
    assert len(sink.to(SOC_QUEUE)) == 1
    assert count(gateway, ServiceRequest) == 1
    assert count(gateway, StoredMail) == 1


def test_a_mail_without_message_id_delivered_twice_is_stored_once(
    gateway: Gateway, sink: Sink
) -> None:
    data = mail(message_id=None, subject="No id here")
    relayed = (
        b"Received: from mx2.example.com by mx.securecall.example; Sat, 21 Nov 2026\r\n" + data
    )
    assert gateway.send(data).code == 250
    assert gateway.send(relayed).code == 250
    sink.wait_to(ALICE)
    assert len(sink.settle_to(ALICE)) == 1
    assert count(gateway, ServiceRequest) == 1


# --- automatic mail and unregistered senders (R6.1, R1.8) -------------------------------------


@pytest.mark.parametrize(
    ("headers", "envelope"),
    [
        (
            {"Auto-Submitted": "auto-replied", "X-Auto-Response-Suppress": "All"},
            "alice@example.com",
        ),
        ({"List-Id": "<ops.example.com>", "Precedence": "list"}, "alice@example.com"),
        ({"Precedence": "bulk"}, "alice@example.com"),
        ({"Content-Type": "multipart/report; report-type=delivery-status; boundary=x"}, ""),
    ],
    ids=["out-of-office", "mailing-list", "bulk", "dsn"],
)
def test_automatic_mail_gets_no_acknowledgement_and_opens_nothing(
    gateway: Gateway, sink: Sink, headers: dict[str, str], envelope: str
) -> None:
    data = mail(subject="Automatic reply: VPN", headers=headers)
    if "Content-Type" in headers:  # a DSN replaces the text body's content type
        data = data.replace(b"Content-Type: text/plain; charset=utf-8\r\n", b"", 1)
    assert gateway.send(data, mail_from=envelope).code == 250
    assert sink.settle() == []
    assert count(gateway, ServiceRequest) == 0
    assert count(gateway, StoredMail, StoredMail.status.in_(("review", "bounce"))) == 1


def test_an_out_of_office_reply_on_an_sr_is_kept_on_it_without_any_answer(
    gateway: Gateway, sink: Sink
) -> None:
    sr_id, ack = open_one(gateway, sink)
    oof = mail(
        subject=f"Automatic reply: [{sr_id}] VPN",
        body="I am out until Monday.",
        in_reply_to=ack.message["Message-ID"],
        headers={"Auto-Submitted": "auto-replied"},
    )
    assert gateway.send(oof).code == 250
    shown = show(gateway, sr_id)
    assert shown["messages"][1]["author"] == "automatic"
    assert len(sink.settle_to(ALICE)) == 1
    assert len(sink.to(SOC_QUEUE)) == 1  # only the new SR's notification, none for the OOF


def test_an_unregistered_sender_opens_nothing_and_gets_one_notice_a_day(
    make_gateway: Any, sink: Sink
) -> None:
    clock = OffsetClock()
    gateway = make_gateway(clock=clock)
    for n in range(3):
        data = mail(sender="stranger@nowhere.example", subject=f"Hello {n}")
        assert gateway.send(data, mail_from="stranger@nowhere.example").code == 250
    notice = sink.wait_for(1)[0]
    assert len(sink.settle()) == 1
    assert notice.rcpt_tos == ("stranger@nowhere.example",)
    assert notice.message["Auto-Submitted"] == "auto-replied"
    assert "not registered" in notice.text
    assert count(gateway, ServiceRequest) == 0
    with gateway.runtime.sessions.begin() as session:
        held = held_listings.held_mails(session)
    assert [h["subject"] for h in held] == ["Hello 2", "Hello 1", "Hello 0"]
    assert all(h["reason"] == "an unregistered sender" for h in held)
    # A day later the sender may be told once more
    clock.advance(timedelta(hours=25))
    data = mail(sender="stranger@nowhere.example", subject="Hello again")
    assert gateway.send(data, mail_from="stranger@nowhere.example").code == 250
    assert len(sink.wait_for(2)) == 2


def test_the_gateways_own_mail_coming_back_is_held_without_an_answer(
    gateway: Gateway, sink: Sink
) -> None:
    _sr_id, ack = open_one(gateway, sink)
    before = len(sink.wait_to(SOC_QUEUE))
    assert gateway.send(ack.data, mail_from="").code == 250  # our acknowledgement bounced back
    assert len(sink.settle_to(ALICE)) == 1
    assert len(sink.to(SOC_QUEUE)) == before
    assert count(gateway, StoredMail, StoredMail.status.in_(("review", "bounce"))) == 1


# --- what the acknowledgement says (R1.3, R1.4, R1.9–R1.11) ------------------------------------


def test_a_p1_request_stays_p3_and_the_ack_says_to_telephone_first(
    gateway: Gateway, sink: Sink
) -> None:
    sr_id, ack = open_one(
        gateway,
        sink,
        subject="PRIORITY 1 - firewall cluster down",
        body="Production is down since 08:00. Please call back.",
    )
    text = ack.text
    assert text.lstrip().startswith("*** PRIORITY 1: PLEASE TELEPHONE THE SOC NOW ON")
    assert "you asked for Priority 1" in text
    shown = show(gateway, sr_id)
    assert shown["priority"] == 3
    assert shown["requested_priority"] == 1
    # And the SOC is alerted at once
    queue = sink.wait_to(SOC_QUEUE, 2)
    (alert,) = [m for m in queue if "P1 requested by e-mail" in m.message["Subject"]]
    assert sr_id in alert.message["Subject"]
    assert alert.message["Auto-Submitted"] == "auto-generated"
    assert "Production is down" in alert.text


def test_a_reply_asking_for_p1_is_recorded_and_alerts_the_soc_but_repeating_it_does_not(
    gateway: Gateway, sink: Sink
) -> None:
    sr_id, _ack = open_one(gateway, sink, subject="PRIORITY 2 - backup link flapping")
    assert show(gateway, sr_id)["requested_priority"] == 2

    def alerts() -> list[Received]:
        return [m for m in sink.to(SOC_QUEUE) if "P1 requested by e-mail" in m.message["Subject"]]

    # the subject repeats the SR's title and its "PRIORITY 2": that asks for nothing new
    repeat = mail(subject=f"Re: [{sr_id}] PRIORITY 2 - backup link flapping", body="Any news?")
    assert gateway.send(repeat).code == 250
    asking = mail(
        subject=f"Re: [{sr_id}] PRIORITY 2 - backup link flapping",
        body="Please raise this to Priority 1, our production is down now.",
    )
    assert gateway.send(asking).code == 250
    (alert,) = eventually(alerts)
    assert sr_id in alert.message["Subject"]
    assert "our production is down now" in alert.text
    shown = show(gateway, sr_id)
    assert (shown["priority"], shown["requested_priority"]) == (3, 1)  # recorded, not applied
    sink.settle()
    assert len(alerts()) == 1


def test_a_p2_request_is_recorded_as_requested_and_no_alert_is_sent(
    gateway: Gateway, sink: Sink
) -> None:
    sr_id, ack = open_one(gateway, sink, subject="Prio 2: backup VPN flapping")
    assert show(gateway, sr_id)["requested_priority"] == 2
    assert "you asked for Priority 2" in ack.text
    sink.settle()
    assert [
        m.message["Subject"] for m in sink.to(SOC_QUEUE) if "P1 requested" in m.message["Subject"]
    ] == []


@pytest.mark.parametrize(
    ("subject", "kind", "target"),
    [
        ("SecureHands: firmware upgrade of the cluster", "securehands", "8 working hours"),
        (
            "Technical Baseline Assessment for our gateways",
            "technical_baseline_assessment",
            "8 working hours",
        ),
        (
            "Vulnerability Assessment of our perimeter",
            "vulnerability_assessment",
            "8 working hours",
        ),
        ("VPN flapping", "incident", "24 hours"),
    ],
)
def test_the_subject_types_the_sr_and_sets_its_target(
    gateway: Gateway, sink: Sink, subject: str, kind: str, target: str
) -> None:
    sr_id, ack = open_one(gateway, sink, subject=subject)
    assert show(gateway, sr_id)["type"] == kind
    assert target in ack.text


def test_a_request_for_root_cause_analysis_is_answered_with_the_securehands_note(
    gateway: Gateway, sink: Sink
) -> None:
    _sr_id, ack = open_one(gateway, sink, body="After the outage, please send us an RCA.")
    assert "Root Cause Analysis" in ack.text
    assert "SecureHands" in ack.text


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "Our FortiGate 600E (FG6H0E5819900001) reboots.",
            "is covered by your support entitlement",
        ),
        ("The Check Point 6200 CP6200-77-4411 drops packets.", "the support entitlement expired"),
        ("The Palo Alto PA-3220 is slow.", "No product was identified"),
    ],
    ids=["covered", "expired", "unnamed"],
)
def test_the_acknowledgement_states_the_entitlement(
    gateway: Gateway, sink: Sink, body: str, expected: str
) -> None:
    _sr_id, ack = open_one(gateway, sink, body=body)
    assert expected in " ".join(ack.text.split())


def test_every_product_a_mail_names_is_judged_in_the_acknowledgement_and_the_socs_copy(
    gateway: Gateway, sink: Sink
) -> None:
    body = (
        "Both our FortiGate 600E FG6H0E5819900001 and our Check Point 6200 CP6200-77-4411 "
        "crash every night."
    )
    sr_id, ack = open_one(gateway, sink, body=body)
    said = " ".join(ack.text.split())
    assert "FortiGate 600E (FG6H0E5819900001) is covered by your support entitlement" in said
    assert "Check Point 6200 (CP6200-77-4411): the support entitlement expired" in said
    html = ack.message.get_body(("html",)).get_content()
    assert "the support entitlement expired" in html
    copy = next(m for m in sink.wait_to(SOC_QUEUE) if sr_id in m.message["Subject"])
    assert "covered - FortiGate 600E (FG6H0E5819900001)" in copy.text
    assert "expired - Check Point 6200 (CP6200-77-4411)" in copy.text


def test_a_german_mail_in_business_hours_is_acknowledged_in_german(
    gateway: Gateway, sink: Sink
) -> None:
    sr_id, ack = open_one(
        gateway,
        sink,
        sender="bernd@example.de",
        subject="VPN ausgefallen",
        body="Guten Tag,\n\nseit heute Morgen ist der VPN-Tunnel nicht mehr erreichbar."
        " Bitte um Hilfe."
        "\n\nMit freundlichen Grüßen\nBernd",
    )
    assert ack.message["Subject"] == f"[{sr_id}] Service Request eingegangen: VPN ausgefallen"
    assert "Guten Tag Bernd Müller," in ack.text
    assert "24 Stunden" in ack.text
    assert ack.message.get_body(("html",))["Content-Type"].params["charset"] == "utf-8"


def test_a_french_mail_outside_business_hours_is_answered_in_english_with_a_french_line(
    make_gateway: Any, sink: Sink
) -> None:
    saturday = datetime(2026, 11, 21, 20, 0, tzinfo=UTC)
    gateway = make_gateway(clock=OffsetClock(saturday))
    _sr_id, ack = open_one(
        gateway,
        sink,
        sender="chloe@example.fr",
        subject="Problème de licence",
        body="Bonjour,\n\nnous avons un problème avec la licence de notre pare-feu depuis hier."
        "\n\nCordialement,\nChloé",
    )
    assert "Service Request received" in ack.message["Subject"]
    assert "Ce message est en anglais" in ack.text


# --- the SMTP edge (R6.2, R6.3) ----------------------------------------------------------------


def test_rcpt_for_an_address_that_is_not_an_intake_address_is_refused(gateway: Gateway) -> None:
    reply = smtp_send(gateway.settings.smtp_port, mail(), rcpt="postmaster@securecall.example")
    assert reply.code == 550


def test_a_mail_over_the_size_limit_is_refused_with_552(make_gateway: Any) -> None:
    gateway = make_gateway(max_message_size=20_000)
    big = mail(body="Our firewall log follows.\n" + ("x" * 70 + "\n") * 400)
    # Declared in MAIL FROM (RFC 1870): refused before the body is sent
    reply = smtp_send(gateway.settings.smtp_port, big, size=len(big))
    assert reply.code == 552
    # Not declared: refused at the end of DATA, and nothing is stored
    assert gateway.send(big).code == 552
    assert count(gateway, StoredMail) == 0


def test_a_storage_failure_answers_451_and_stores_nothing(gateway: Gateway, sink: Sink) -> None:
    engine = gateway.runtime.sessions.kw["bind"]
    with failing(engine, "INSERT INTO raw_mails", OperationalError("", {}, Exception("disk I/O"))):
        reply = gateway.send(mail(message_id="<retry-me@example.com>"))
    assert reply.code == 451
    assert count(gateway, StoredMail) == 0
    # The sending MTA retries later, and then the mail is taken
    assert gateway.send(mail(message_id="<retry-me@example.com>")).code == 250
    assert len(sink.wait_to(ALICE)) == 1


def test_an_sr_and_its_acknowledgement_are_committed_together_or_not_at_all(
    gateway: Gateway, sink: Sink
) -> None:
    engine = gateway.runtime.sessions.kw["bind"]
    with failing(
        engine, "INSERT INTO deliveries", OperationalError("", {}, Exception("disk full"))
    ):
        reply = gateway.send(mail())
    # The Delivery could not be written, so neither was the SR: the sender is asked to retry
    assert reply.code == 451
    assert count(gateway, ServiceRequest) == 0
    assert count(gateway, StoredMail) == 0
    assert sink.settle() == []


def test_a_mail_that_breaks_processing_is_kept_in_quarantine_and_accepted(
    gateway: Gateway, sink: Sink
) -> None:
    engine = gateway.runtime.sessions.kw["bind"]
    data = mail(message_id="<breaks@example.com>")
    with failing(engine, "INSERT INTO service_requests", RuntimeError("a rule no one foresaw")):
        reply = gateway.send(data)
    assert reply.code == 250  # accepted: the mail is kept, never lost
    assert count(gateway, ServiceRequest) == 0
    with gateway.runtime.sessions.begin() as session:
        (kept,) = held_listings.held_mails(session, status="quarantined")
        assert "a rule no one foresaw" in kept["reason"]
        stored = session.get_one(StoredMail, kept["id"])
        assert stored.data.startswith(data.split(b"\r\n", 1)[0])
    # Delivered again by a retrying MTA, it is the same mail: stored once
    assert gateway.send(data).code == 250
    assert count(gateway, StoredMail) == 1
    assert sink.settle() == []
