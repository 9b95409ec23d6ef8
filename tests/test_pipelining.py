"""The relay connection with PIPELINING (RFC 2920): MAIL, RCPT and DATA go in one write, and a
refusal of any of them still reads as the refusal it is, on a connection that stays usable."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.counting_sink import CountingSink
from workers.transport import Outgoing, PermanentFailure, SmtpTransport, TemporaryFailure

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


@pytest.fixture
def transport(relay: CountingSink) -> Iterator[SmtpTransport]:
    transport = SmtpTransport(host="127.0.0.1", port=relay.port, tls="none", timeout=10)
    yield transport
    transport.close()


@pytest.mark.parametrize("together", [False, True], ids=["one-by-one", "in-one-run"])
def test_pipelined_mails_arrive_whole_each_marked_before_its_end(
    relay: CountingSink, transport: SmtpTransport, together: bool
) -> None:
    received_at_mark: list[int] = []

    def mark() -> bool:
        received_at_mark.append(relay.received())
        return True

    run = [Outgoing(MAIL, "b@x.example", [f"r{n}@example.com"], mark) for n in range(6)]
    if together:  # each mail's end goes with the next one's envelope
        assert transport.send_each(run) == [True] * 6
    else:
        for one in run:
            assert transport.send_once(one.data, one.sender, one.recipients, one.mark)
    assert received_at_mark == [0, 1, 2, 3, 4, 5]  # each marked while the relay had not got it
    assert [m.rcpt_tos for m in relay.mails] == [(f"r{n}@example.com",) for n in range(6)]
    assert all(m.data == MAIL for m in relay.mails)
    assert [m.mail_from for m in relay.mails] == ["b@x.example"] * 6
    assert transport.send_each(run[:1]) == [True]  # the connection is ready for more
    assert relay.received() == 7


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
        transport.send_once(MAIL, "b@x.example", [recipient], lambda: not marked.append(recipient))
    assert marked == []  # never marked sent: nothing was handed over
    assert transport.send_once(MAIL, "b@x.example", ["ok@example.com"], lambda: True)
    assert transport.send_once(MAIL, "b@x.example", ["ok2@example.com"], lambda: True)
    assert [m.rcpt_tos for m in relay.mails] == [("ok@example.com",), ("ok2@example.com",)]


def test_in_a_run_a_refused_recipient_a_mark_refused_and_a_lost_mail_touch_only_their_own(
    relay: CountingSink, transport: SmtpTransport
) -> None:
    marked: list[str] = []

    def mark_of(recipient: str, answer: bool = True) -> Outgoing:
        def mark() -> bool:
            marked.append(recipient)
            return answer

        return Outgoing(MAIL, "b@x.example", [recipient], mark)

    def boom() -> bool:
        raise RuntimeError("the database went away")

    run = [
        mark_of("a@example.com"),
        mark_of("gone@example.com"),  # 550 to its RCPT, which went with a's end
        mark_of("b@example.com"),
        mark_of("full@example.com"),  # 452
        mark_of("taken@example.com", answer=False),  # another worker had it
        mark_of("c@example.com"),
        Outgoing(MAIL, "b@x.example", ["lost@example.com"], boom),
        mark_of("d@example.com"),
    ]
    results = transport.send_each(run)
    kinds = [r if isinstance(r, bool) else (type(r).__name__, str(r)[:3]) for r in results]
    assert kinds == [
        True,
        ("PermanentFailure", "550"),
        True,
        ("TemporaryFailure", "452"),
        False,
        True,
        ("RuntimeError", "the"),
        True,
    ]
    # a refused mail is never marked; the relay got each of the others once, and none it dropped
    assert marked == [f"{x}@example.com" for x in ("a", "b", "taken", "c", "d")]
    assert [m.rcpt_tos for m in relay.mails] == [
        (f"{x}@example.com",) for x in ("a", "b", "c", "d")
    ]
