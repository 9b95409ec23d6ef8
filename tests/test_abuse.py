"""Tricks and floods (R6.1, R1.8): Ticket Trick, auto-responder loops, senders over their rate."""

from __future__ import annotations

import threading
from datetime import timedelta
from email import message_from_bytes
from typing import Any

from sqlalchemy import select

from gateway.storage.models import ServiceRequest, StoredMail
from tests.support.harness import Gateway, OffsetClock, count, eventually, mail, smtp_send, sr_id_of
from tests.support.sink import Received, Sink

ALICE = "alice@example.com"


def test_a_services_verification_mail_is_held_and_nothing_is_sent_back(
    gateway: Gateway, sink: Sink
) -> None:
    # Someone registered the support address at a chat service; its verification mail arrives
    verification = mail(
        sender="no-reply@chat.example",
        subject="Confirm your email address",
        body="Welcome! Your verification code is 402 881.\nOr open https://chat.example/v/8f2c",
    )
    assert gateway.send(verification, mail_from="no-reply@chat.example").code == 250
    assert sink.settle() == []  # not answered, not relayed, no SR
    with gateway.runtime.sessions.begin() as session:
        held = session.scalars(select(StoredMail)).one()
    assert held.status == "review"
    assert held.reason.startswith("a third party's verification mail")
    assert count(gateway, ServiceRequest) == 0


class AutoResponder:
    """A contact's auto-responder that answers every mail with a new one (no threading headers,
    no RFC 3834 markers): the worst kind, which only the gateway's limits can stop."""

    def __init__(self, gateway: Gateway, sink: Sink, limit: int = 40) -> None:
        self.gateway, self.sink, self.limit = gateway, sink, limit
        self.sent = 0
        self.stored = 0  # replies the gateway has answered 250 to
        self.lock = threading.Lock()
        original = sink.add

        def add(received: Received) -> None:
            original(received)
            if ALICE in received.rcpt_tos:
                threading.Thread(target=self.answer, args=(received,), daemon=True).start()

        sink.add = add  # type: ignore[method-assign]

    def answer(self, received: Received) -> None:
        with self.lock:
            if self.sent >= self.limit:
                return
            self.sent += 1
        subject = message_from_bytes(received.data)["Subject"]
        reply = mail(subject="I am out of the office", body=f"About: {subject}\nBack on Monday.")
        assert self.gateway.send(reply).code == 250
        with self.lock:
            self.stored += 1


def test_an_auto_responder_answering_every_acknowledgement_is_stopped_by_the_limit(
    make_gateway: Any, sink: Sink
) -> None:
    gateway = make_gateway(autoreply_per_hour=5)
    responder = AutoResponder(gateway, sink)
    assert gateway.send(mail(subject="VPN down")).code == 250
    eventually(lambda: responder.stored == 5, timeout=30)
    sink.settle()
    assert len(sink.to(ALICE)) == 5  # five acknowledgements in the hour, then silence
    assert responder.sent == 5
    assert count(gateway, ServiceRequest) == 6  # its mails are still kept, as SRs to triage
    with gateway.runtime.sessions.begin() as session:
        last = session.scalars(select(StoredMail).order_by(StoredMail.id.desc())).first()
    assert "automatic-reply limit reached" in last.reason


def test_the_limit_lifts_after_the_hour(make_gateway: Any, sink: Sink) -> None:
    clock = OffsetClock()
    gateway = make_gateway(autoreply_per_hour=2, clock=clock)
    for n in range(3):
        assert gateway.send(mail(subject=f"problem {n}")).code == 250
    assert len(sink.settle_to(ALICE)) == 2
    clock.advance(timedelta(minutes=61))
    assert gateway.send(mail(subject="problem 3")).code == 250
    assert len(sink.wait_to(ALICE, 3)) == 3


def test_a_sender_over_its_rate_is_asked_to_retry_later(make_gateway: Any, sink: Sink) -> None:
    gateway = make_gateway(smtp_sender_rate=3)
    port = gateway.settings.smtp_port
    replies = [smtp_send(port, mail(subject=f"flood {n}")) for n in range(4)]
    assert [r.code for r in replies] == [250, 250, 250, 451]
    assert "try again in" in replies[3].text
    other = smtp_send(
        port, mail(sender="bernd@example.de", subject="unrelated"), mail_from="bernd@example.de"
    )
    assert other.code == 250  # the limit is per sender
    assert count(gateway, StoredMail) == 4


def test_mail_carrying_the_gateways_x_loop_is_held_unanswered(gateway: Gateway, sink: Sink) -> None:
    looped = mail(subject="Re: something", headers={"X-Loop": "soc@securecall.example"})
    assert gateway.send(looped).code == 250
    assert sink.settle() == []
    assert count(gateway, ServiceRequest) == 0


def test_an_unknown_and_a_foreign_sr_id_get_the_same_answer(gateway: Gateway, sink: Sink) -> None:
    """SR IDs are not enumerable: a stranger learns nothing from the ID he names."""
    assert gateway.send(mail()).code == 250
    real = sr_id_of(sink.wait_to(ALICE)[0])
    answers = []
    for n, sr_id in enumerate((real, "SR-0000-0000")):
        stranger = f"probe{n}@nowhere.example"
        data = mail(sender=stranger, subject=f"Re: [{sr_id}] status?", body="What is the status?")
        assert gateway.send(data, mail_from=stranger).code == 250
        (answer,) = sink.wait_to(stranger)
        answers.append((answer.message["Subject"], answer.text))
    assert answers[0] == answers[1]
    assert real not in answers[0][1]
