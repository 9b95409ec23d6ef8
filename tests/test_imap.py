"""Intake through a real Dovecot mailbox: IDLE, polling, moved or flagged only after the commit."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from imapclient import IMAPClient
from imapclient.exceptions import LoginError
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from gateway.edges.imap import PROCESSED_KEYWORD, parse_mailbox_url
from gateway.storage.models import ImapState, ServiceRequest, StoredMail
from tests.support.dovecot import Dovecot
from tests.support.harness import count, eventually, failing, mail, unique
from tests.support.sink import Sink

ALICE = "alice@example.com"


@pytest.fixture
def mailbox(dovecot: Dovecot) -> Iterator[tuple[str, IMAPClient]]:
    """A fresh mailbox user and a client of its own to put mail in and look at it."""
    url = dovecot.add_user(unique("intake"))
    box = parse_mailbox_url(url)
    client = IMAPClient("127.0.0.1", port=box.port, ssl=False, timeout=30)
    eventually(lambda: _login(client, box.username, box.password), timeout=10, interval=0.2)
    yield url, client
    client.logout()


def _login(client: IMAPClient, user: str, password: str) -> bool:
    try:
        client.login(user, password)
    except LoginError:
        return False
    return True


def folder_count(client: IMAPClient, folder: str) -> int:
    if not client.folder_exists(folder):
        return 0
    return int(client.folder_status(folder, [b"MESSAGES"])[b"MESSAGES"])


def test_a_mail_in_the_mailbox_is_taken_by_idle_and_acknowledged(
    make_gateway: Any, mailbox: tuple[str, IMAPClient], sink: Sink
) -> None:
    url, client = mailbox
    # Polling once a minute: only IDLE can bring the mail in within the wait below
    gateway = make_gateway(imap_url=url, imap=True, imap_poll_interval=60.0)
    eventually(lambda: gateway.poller.passes >= 1)  # the poller has looked once, now it idles
    client.append("INBOX", mail(message_id="<imap-1@example.com>"))
    (ack,) = sink.wait_to(ALICE, timeout=10)
    assert ack.message["In-Reply-To"] == "<imap-1@example.com>"
    assert count(gateway, ServiceRequest) == 1
    eventually(lambda: folder_count(client, "Processed") == 1)
    assert folder_count(client, "INBOX") == 0
    with gateway.runtime.sessions.begin() as session:
        (state,) = session.scalars(select(ImapState)).all()
        client.select_folder("INBOX", readonly=True)
        assert state.uidvalidity == client.folder_status("INBOX", [b"UIDVALIDITY"])[b"UIDVALIDITY"]
        stored = session.scalars(select(StoredMail)).one()
        assert stored.source == "imap"


def test_a_mail_stays_in_the_inbox_unread_until_it_is_committed(
    make_gateway: Any, mailbox: tuple[str, IMAPClient], sink: Sink
) -> None:
    url, client = mailbox
    gateway = make_gateway(imap_url=url, imap=True, imap_poll_interval=0.5, imap_use_idle=False)
    engine = gateway.runtime.sessions.kw["bind"]
    locked = OperationalError("", {}, Exception("database is locked"))
    with failing(engine, "INSERT INTO raw_mails", locked) as attempts:
        client.append("INBOX", mail(message_id="<imap-2@example.com>"))
        eventually(lambda: len(attempts) >= 2)  # tried, failed, tried again after reconnecting
        client.select_folder("INBOX", readonly=True)
        (uid,) = client.search(["ALL"])
        assert b"\\Seen" not in client.get_flags([uid])[uid]  # fetched with BODY.PEEK[]
        client.unselect_folder()
        assert folder_count(client, "Processed") == 0
        assert count(gateway, StoredMail) == 0
    # Once storage works again the mail is taken, and only then moved
    sink.wait_to(ALICE, timeout=15)
    eventually(lambda: folder_count(client, "Processed") == 1)
    eventually(lambda: folder_count(client, "INBOX") == 0)


def test_the_same_mail_twice_in_the_mailbox_is_stored_and_acknowledged_once(
    make_gateway: Any, mailbox: tuple[str, IMAPClient], sink: Sink
) -> None:
    url, client = mailbox
    data = mail(message_id="<imap-twice@example.com>")
    client.append("INBOX", data)
    client.append("INBOX", data)
    gateway = make_gateway(imap_url=url, imap=True)
    eventually(lambda: folder_count(client, "Processed") == 2)
    assert len(sink.settle_to(ALICE)) == 1
    assert count(gateway, ServiceRequest) == 1
    assert count(gateway, StoredMail) == 1


def test_the_same_mail_over_smtp_and_through_the_mailbox_is_stored_once(
    make_gateway: Any, mailbox: tuple[str, IMAPClient], sink: Sink
) -> None:
    url, client = mailbox
    gateway = make_gateway(imap_url=url, imap=True)
    data = mail(message_id="<both-ways@example.com>")
    assert gateway.send(data).code == 250
    # The mailbox copy went through another hop that added its trace headers
    client.append("INBOX", b"Return-Path: <alice@example.com>\r\nDelivered-To: soc@x\r\n" + data)
    eventually(lambda: folder_count(client, "Processed") == 1)
    assert len(sink.settle_to(ALICE)) == 1
    assert count(gateway, StoredMail) == 1


def test_one_broken_message_does_not_stop_the_poller(
    make_gateway: Any, mailbox: tuple[str, IMAPClient], sink: Sink
) -> None:
    url, client = mailbox
    client.append("INBOX", b"\x00\xff garbage without headers \r\n\r\n\xfe")
    client.append("INBOX", mail(message_id="<after-garbage@example.com>"))
    gateway = make_gateway(imap_url=url, imap=True)
    (ack,) = sink.wait_to(ALICE)
    assert ack.message["In-Reply-To"] == "<after-garbage@example.com>"
    eventually(lambda: folder_count(client, "INBOX") == 0)
    assert count(gateway, StoredMail) == 2  # the broken one is kept too, for review


def test_flag_mode_marks_processed_mail_and_leaves_it_in_place(
    make_gateway: Any, mailbox: tuple[str, IMAPClient], sink: Sink
) -> None:
    url, client = mailbox
    client.append("INBOX", mail(message_id="<flagged@example.com>"))
    gateway = make_gateway(
        imap_url=url, imap=True, imap_mark="flag", imap_poll_interval=0.3, imap_use_idle=False
    )
    sink.wait_to(ALICE)
    client.select_folder("INBOX", readonly=True)
    (uid,) = client.search(["ALL"])
    eventually(lambda: PROCESSED_KEYWORD.encode() in client.get_flags([uid])[uid])
    passes = gateway.poller.passes
    eventually(lambda: gateway.poller.passes >= passes + 2)
    assert len(sink.settle_to(ALICE)) == 1  # two more polls later, still taken only once
    assert count(gateway, StoredMail) == 1
    assert not client.folder_exists("Processed")


@pytest.fixture
def tls_dovecot() -> Iterator[Dovecot]:
    """A Dovecot of its own with a self-signed certificate: IMAPS, and STARTTLS on plain IMAP."""
    server = Dovecot(tls=True).start()
    yield server
    server.stop()


@pytest.mark.parametrize("scheme", ["imaps", "imap-starttls-required"])
def test_the_poller_speaks_tls_and_starttls(
    make_gateway: Any, tls_dovecot: Dovecot, sink: Sink, scheme: str
) -> None:
    plain = tls_dovecot.add_user(unique("tls"))
    if scheme == "imaps":
        url = plain.replace("imap://", "imaps://").replace(
            f":{tls_dovecot.port}/", f":{tls_dovecot.tls_port}/"
        )
    else:
        url = plain + "?starttls=require"
    box = parse_mailbox_url(plain)
    with IMAPClient("127.0.0.1", port=box.port, ssl=False, timeout=30) as client:
        eventually(lambda: _login(client, box.username, box.password), timeout=10, interval=0.2)
        client.append("INBOX", mail(message_id=f"<{scheme}@example.com>"))
    make_gateway(imap_url=url, imap=True, imap_ca_file=tls_dovecot.ca_file)
    (ack,) = sink.wait_to(ALICE, timeout=20)
    assert ack.message["In-Reply-To"] == f"<{scheme}@example.com>"


def test_the_poller_refuses_a_server_it_cannot_trust(
    make_gateway: Any, tls_dovecot: Dovecot, sink: Sink
) -> None:
    url = tls_dovecot.add_user(unique("tls")) + "?starttls=require"
    box = parse_mailbox_url(url)
    with IMAPClient("127.0.0.1", port=box.port, ssl=False, timeout=30) as client:
        eventually(lambda: _login(client, box.username, box.password), timeout=10, interval=0.2)
        client.append("INBOX", mail())
    gateway = make_gateway(imap_url=url, imap=True)  # no CA file: the certificate is unknown
    eventually(lambda: gateway.poller.failures >= 2, timeout=20)  # tried, refused, tried again
    assert gateway.poller.passes == 0
    assert sink.settle() == []
    assert count(gateway, StoredMail) == 0


def test_the_poller_refuses_a_server_that_does_not_offer_tls_unless_told(
    make_gateway: Any, mailbox: tuple[str, IMAPClient], sink: Sink
) -> None:
    told, client = mailbox
    assert told.endswith("?tls=none")  # the test Dovecot speaks plain IMAP
    client.append("INBOX", mail(message_id="<plain-imap@example.com>"))
    # R6.7: imap:// without a word requires STARTTLS, which this server does not offer
    gateway = make_gateway(imap_url=told.removesuffix("?tls=none"), imap=True)
    eventually(lambda: gateway.poller.failures >= 2, timeout=20)  # refused, and again
    assert gateway.poller.passes == 0
    assert sink.settle() == []
    assert count(gateway, StoredMail) == 0
    assert folder_count(client, "INBOX") == 1


def test_a_mailbox_url_says_tls_none_or_nothing() -> None:
    assert parse_mailbox_url("imap://u:p@h/INBOX").tls == "starttls"
    assert parse_mailbox_url("imap://u:p@h/INBOX?starttls=require").tls == "starttls"
    assert parse_mailbox_url("imap://u:p@h/INBOX?tls=none").tls == "none"
    assert parse_mailbox_url("imaps://u:p@h/INBOX").tls == "implicit"
    # "STARTTLS when offered" is gone: an offer can be stripped by anyone in the path
    with pytest.raises(ValueError, match=r"does not take \?starttls=auto"):
        parse_mailbox_url("imap://u:p@h/INBOX?starttls=auto")


def test_the_poller_reconnects_after_the_server_comes_back(make_gateway: Any, sink: Sink) -> None:
    server = Dovecot().start()
    try:
        url = server.add_user(unique("intake"))
        gateway = make_gateway(imap_url=url, imap=True)
        eventually(lambda: count(gateway, ImapState) == 1)
        server.halt()
        eventually(lambda: gateway.poller.failures >= 1, timeout=20)  # it noticed, backs off
        server.start()
        box = parse_mailbox_url(url)
        with IMAPClient("127.0.0.1", port=box.port, ssl=False, timeout=30) as client:
            client.login(box.username, box.password)
            client.append("INBOX", mail(message_id="<after-restart@example.com>"))
        (ack,) = sink.wait_to(ALICE, timeout=30)
        assert ack.message["In-Reply-To"] == "<after-restart@example.com>"
    finally:
        server.stop()
