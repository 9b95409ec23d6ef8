"""The relay connections of bulletin mail: MAIL, RCPT and DATA go in one write (PIPELINING,
RFC 2920), a run of mails goes side by side over a thread's connections with each round marked
sent in one call before any of its ends, and a refusal of any step still reads as the refusal
it is, on connections that stay usable."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.counting_sink import CountingSink
from workers import smtp_relay
from workers.smtp_relay import SmtpTransport
from workers.transport import (
    EndUnanswered,
    Outgoing,
    PermanentFailure,
    TemporaryFailure,
    send_once,
)

MAIL = b"From: gateway@securecall.example\r\nSubject: s\r\n\r\nbody\r\n.dot line\r\n"


@pytest.fixture
def relay() -> Iterator[CountingSink]:
    sink = CountingSink(
        refuse={
            "gone@example.com": b"550 5.1.1 no such user\r\n",
            "full@example.com": b"452 4.2.2 mailbox full\r\n",
        }
    ).start()
    yield sink
    sink.stop()


def transport_of(relay: CountingSink, lanes: int) -> SmtpTransport:
    return SmtpTransport(host="127.0.0.1", port=relay.port, tls="none", timeout=10, lanes=lanes)


@pytest.fixture
def transport(relay: CountingSink) -> Iterator[SmtpTransport]:
    transport = transport_of(relay, 1)
    yield transport
    transport.close()


def outgoing(*names: str) -> list[Outgoing]:
    return [Outgoing(MAIL, "b@x.example", [f"{name}@example.com"]) for name in names]


@pytest.mark.parametrize("lanes", [1, 3])
def test_a_run_goes_side_by_side_each_round_marked_before_the_relay_has_any_of_it(
    relay: CountingSink, lanes: int
) -> None:
    transport = transport_of(relay, lanes)
    marks: list[tuple[list[int], int]] = []

    def mark(ready: list[int]) -> list[int]:
        marks.append((ready, relay.received()))
        return ready

    run = outgoing(*(f"r{n}" for n in range(7)))
    try:
        assert transport.send_each(run, mark) == [True] * 7
        rounds = [list(range(n, min(n + lanes, 7))) for n in range(0, 7, lanes)]
        # each round marked in one call, while the relay had only the rounds before it
        assert marks == [(positions, positions[0]) for positions in rounds]
        assert sorted(m.rcpt_tos for m in relay.mails) == [(f"r{n}@example.com",) for n in range(7)]
        assert all(m.data == MAIL and m.mail_from == "b@x.example" for m in relay.mails)
        assert transport.send_each(run[:1], mark) == [True]  # the connections are ready for more
        assert len(transport.open) == lanes
    finally:
        transport.close()
    assert relay.received() == 8


@pytest.mark.parametrize(
    ("recipient", "failure", "code"),
    [("gone@example.com", PermanentFailure, "550"), ("full@example.com", TemporaryFailure, "452")],
)
def test_a_refused_recipient_is_the_relays_answer_and_the_next_mail_goes_through(
    relay: CountingSink,
    transport: SmtpTransport,
    recipient: str,
    failure: type[Exception],
    code: str,
) -> None:
    marked: list[str] = []
    with pytest.raises(failure, match=code):
        send_once(transport, MAIL, "b@x.example", [recipient], lambda: not marked.append(recipient))
    assert marked == []  # never marked sent: nothing was handed over
    assert send_once(transport, MAIL, "b@x.example", ["ok@example.com"], lambda: True)
    assert send_once(transport, MAIL, "b@x.example", ["ok2@example.com"], lambda: True)
    assert [m.rcpt_tos for m in relay.mails] == [("ok@example.com",), ("ok2@example.com",)]


def test_a_refused_recipient_and_a_mail_not_marked_touch_only_their_own(
    relay: CountingSink,
) -> None:
    transport = transport_of(relay, 2)
    run = outgoing("a", "gone", "b", "full", "taken", "c", "d")
    asked: list[list[int]] = []

    def mark(ready: list[int]) -> list[int]:
        asked.append(ready)
        return [n for n in ready if n != 4]  # another worker had "taken"

    try:
        results = transport.send_each(run, mark)
    finally:
        transport.close()
    kinds = [r if isinstance(r, bool) else (type(r).__name__, str(r)[:3]) for r in results]
    assert kinds == [
        True,
        ("PermanentFailure", "550"),
        True,
        ("TemporaryFailure", "452"),
        False,
        True,
        True,
    ]
    assert asked == [[0], [2], [4, 5], [6]]  # a refused mail is never offered to the mark
    # the relay got each marked mail once, and none it was not given the end of
    assert sorted(m.rcpt_tos for m in relay.mails) == [
        (f"{x}@example.com",) for x in ("a", "b", "c", "d")
    ]


def test_a_mark_that_fails_loses_its_round_and_nothing_else(relay: CountingSink) -> None:
    transport = transport_of(relay, 2)
    calls = 0

    def mark(ready: list[int]) -> list[int]:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("the database went away")
        return ready

    try:
        results = transport.send_each(outgoing("a", "b", "lost1", "lost2", "c"), mark)
        again = transport.send_each(outgoing("d"), mark)
    finally:
        transport.close()
    kinds = [r if isinstance(r, bool) else type(r).__name__ for r in results]
    assert kinds == [True, True, "RuntimeError", "RuntimeError", True]
    assert again == [True]  # its connections were dropped and are opened again
    assert sorted(m.rcpt_tos for m in relay.mails) == [
        (f"{x}@example.com",) for x in ("a", "b", "c", "d")
    ]


def test_an_end_the_relay_never_answers_is_told_apart_from_a_refusal(
    relay: CountingSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The relay has the mail once it has its dot; with no reply read the sender cannot know
    whether it accepted it, and a bulletin mail marked sent stays sent (workers/bulk.py)."""
    monkeypatch.setattr(smtp_relay, "END_REPLY_TIMEOUT", 0.5)
    transport = transport_of(relay, 1)

    def mark(ready: list[int]) -> list[int]:
        relay.hold()  # it reads on, and answers nothing more
        return ready

    try:
        (result,) = transport.send_each(outgoing("slow"), mark)
    finally:
        relay.release()
        transport.close()
    assert isinstance(result, EndUnanswered)
    assert isinstance(result, TemporaryFailure)  # for a mail not marked first: try again
    relay.wait_until(lambda s: len(s.mails) == 1, timeout=10)  # the relay did get it
