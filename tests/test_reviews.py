"""The TAM (§3.10, R2.5) and the team leaders' daily progress review (§3.5.4, R2.3)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from gateway import clock, directory
from tests.support.harness import Gateway, OffsetClock, mail
from tests.support.sink import Sink
from tests.test_clock import at, open_sr, soc_command

TAM = "tara@securecall.example"
LEAD = "lead@securecall.example"  # a team leader of the test directory
START = datetime(2026, 11, 18, 9, 0, tzinfo=UTC)  # Wednesday; London is on UTC in November
THURSDAY_0700 = datetime(2026, 11, 19, 7, 0, tzinfo=UTC)
THURSDAY_0800 = datetime(2026, 11, 19, 8, 0, tzinfo=UTC)


def with_tam(gateway: Gateway) -> Gateway:
    rt = gateway.runtime
    with rt.sessions.begin() as session:
        customer = directory.require_customer(session, "Example Corp")
        directory.add_contact(session, customer, TAM, "Tara TAM", rt.now(), role="tam")
    clock.prepare(rt)
    return gateway


def test_the_tam_hears_at_once_of_a_p1_request_and_of_p3_in_the_daily_digest(
    make_gateway: Any, sink: Sink
) -> None:
    gateway = with_tam(make_gateway(clock=OffsetClock(START)))
    urgent = mail(subject="PRIORITY 1: cluster down", message_id="<p1@example.com>")
    assert gateway.send(urgent).code == 250
    (notice,) = sink.wait_to(TAM)
    assert "Example Corp: P3 (asked P1) Service Request" in notice.message["Subject"]
    quiet = open_sr(gateway, sink, subject="Question about log retention")
    sink.settle()
    assert len(sink.to(TAM)) == 1  # the P3 one waits for the digest
    at(gateway, THURSDAY_0800 - timedelta(minutes=1))
    assert len(sink.settle_to(TAM)) == 1
    at(gateway, THURSDAY_0800 + timedelta(minutes=1))
    digest = sink.wait_to(TAM, 2)[1]
    assert digest.message["Subject"] == "New Service Requests of your customers, 2026-11-19 (1)"
    assert quiet in digest.text
    assert "cluster down" not in digest.text  # already told at once
    at(gateway, THURSDAY_0800 + timedelta(days=1, minutes=1))
    assert len(sink.settle_to(TAM)) == 2  # nothing new: no empty digest


def test_raising_an_sr_to_p2_tells_the_tam_at_once(make_gateway: Any, sink: Sink) -> None:
    gateway = with_tam(make_gateway(clock=OffsetClock(START)))
    sr_id = open_sr(gateway, sink)
    soc_command(gateway, sr_id, "#priority 2")
    (notice,) = sink.wait_to(TAM)
    assert notice.message["Subject"].startswith(f"[{sr_id}] Example Corp: P2 Service Request")
    at(gateway, THURSDAY_0800 + timedelta(minutes=1))
    assert len(sink.settle_to(TAM)) == 1  # and not again in the digest


def test_an_sr_raised_to_p1_after_the_digest_listed_it_tells_the_tam_at_once_and_once(
    make_gateway: Any, sink: Sink
) -> None:
    gateway = with_tam(make_gateway(clock=OffsetClock(START)))
    sr_id = open_sr(gateway, sink)
    at(gateway, THURSDAY_0800 + timedelta(minutes=1))
    (digest,) = sink.wait_to(TAM)
    assert sr_id in digest.text  # listed at P3
    soc_command(gateway, sr_id, "#p1")
    notice = sink.wait_to(TAM, 2)[1]
    assert notice.message["Subject"].startswith(f"[{sr_id}] Example Corp: P1 Service Request")
    soc_command(gateway, sr_id, "#p3")
    soc_command(gateway, sr_id, "#p2")
    assert len(sink.settle_to(TAM)) == 2  # told it became urgent once, not at every change


def test_team_leaders_get_a_daily_review_of_every_open_sr(make_gateway: Any, sink: Sink) -> None:
    gateway = make_gateway(clock=OffsetClock(START))
    clock.prepare(gateway.runtime)
    first = open_sr(gateway, sink, subject="VPN tunnel down")
    assert gateway.send(mail(subject="Licence question", message_id="<q@example.com>")).code == 250
    soc_command(gateway, first, "#priority 2\nLooking into it.")
    closed = open_sr(gateway, sink, subject="Old problem")
    soc_command(gateway, closed, "#close")
    at(gateway, THURSDAY_0700 - timedelta(minutes=1))
    assert sink.settle_to(LEAD) == []
    at(gateway, THURSDAY_0700 + timedelta(minutes=1))
    (review,) = sink.wait_to(LEAD)
    assert review.message["Subject"] == "Progress review 2026-11-19: 2 open Service Requests"
    text = review.text
    assert text.index(first) < text.index("Licence question")  # P2 before P3
    assert closed not in text
    assert "initial response: met" in text  # the first one was answered
    assert "initial response: due in" in text  # the second one was not, yet
    clock.tick(gateway.runtime)
    assert len(sink.settle_to(LEAD)) == 1  # once a day
    at(gateway, THURSDAY_0700 + timedelta(days=1, minutes=1))
    assert len(sink.wait_to(LEAD, 2)) == 2
