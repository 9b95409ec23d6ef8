"""R6.6: DNS that does not answer makes the sender ask again (451), never a held or lost mail.

Each test has a DNS server of its own that it can silence (a bound socket that never answers),
altogether or for one name, as an unreachable resolver or a dead authoritative server does.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from imapclient import IMAPClient
from sqlalchemy import select

from gateway import directory
from gateway.edges.imap import PROCESSED_KEYWORD, parse_mailbox_url
from gateway.intake.authentication import Verdict
from gateway.storage.models import Delivery, ServiceRequest, StoredMail
from tests.support.dns_server import DkimKey, DnsServer
from tests.support.harness import Gateway, count, eventually, mail, unique
from tests.support.sink import Sink

ALICE = "alice@example.com"
FORWARDER = "forwarder.example"
FORWARDERS_RESULTS = (
    "Authentication-Results: mx.forwarder.example; spf=pass smtp.mailfrom=alice@example.com;"
    " dkim=none; dmarc=pass header.from=example.com\r\n"
)


@pytest.fixture(scope="module")
def keys() -> dict[str, DkimKey]:
    return {"example.com": DkimKey("example.com"), FORWARDER: DkimKey(FORWARDER, "arc")}


@pytest.fixture
def zone(keys: dict[str, DkimKey]) -> Iterator[DnsServer]:
    """example.com: SPF that does not cover loopback, DMARC p=reject, a DKIM key; an ARC key."""
    server = DnsServer().start()
    server.txt("example.com", "v=spf1 ip4:192.0.2.10 -all")
    server.txt("_dmarc.example.com", "v=DMARC1; p=reject")
    for key in keys.values():
        key.publish(server)
    yield server
    server.stop()


def guarded(make_gateway: Any, zone: DnsServer, policy: str = "", **overrides: Any) -> Gateway:
    """A gateway checking senders through `zone`; example.com under `policy` (else the default)."""
    gateway: Gateway = make_gateway(
        dns_servers=(zone.address,), auth_policy="dkim_or_spf", **overrides
    )
    rt = gateway.runtime
    with rt.sessions.begin() as session:
        if policy:
            directory.set_domain_policy(session, "example.com", policy, rt.now())
        else:  # the demo had set it to none
            directory.remove_domain_policy(session, "example.com")
    return gateway


def test_with_dns_unreachable_smtp_answers_451_within_the_budget_then_accepts_the_retry(
    make_gateway: Any, zone: DnsServer, keys: dict[str, DkimKey], sink: Sink
) -> None:
    gateway = guarded(make_gateway, zone, dns_timeout=1.0)
    zone.silent = True
    signed = keys["example.com"].sign(mail(message_id="<dns-down@example.com>"))
    started = time.monotonic()
    reply = gateway.send(signed)
    elapsed = time.monotonic() - started
    assert (reply.code, reply.text[:5]) == (451, "4.7.0"), reply
    assert elapsed < 10, elapsed  # one budget of 1 s in all, not the checks' own timeouts
    assert zone.asked() >= 1  # it did ask, and got no answer
    assert count(gateway, StoredMail) == 0  # not held, not stored: the sender will retry
    assert count(gateway, Delivery) == 0
    # DNS answers again: the sending MTA's retry is accepted and opens its SR
    zone.silent = False
    assert gateway.send(signed).code == 250
    (ack,) = sink.wait_to(ALICE)
    assert ack.message["In-Reply-To"] == "<dns-down@example.com>"
    assert count(gateway, ServiceRequest) == 1


def test_a_dkim_pass_is_enough_while_only_spf_goes_unanswered(
    make_gateway: Any, zone: DnsServer, keys: dict[str, DkimKey], sink: Sink
) -> None:
    gateway = guarded(make_gateway, zone, policy="dmarc", dns_timeout=2.0)
    zone.drop("example.com")  # the SPF record's name; the DKIM key and DMARC record answer
    assert gateway.send(keys["example.com"].sign(mail())).code == 250
    sink.wait_to(ALICE)
    with gateway.runtime.sessions.begin() as session:
        verdict = session.scalars(select(StoredMail.authentication)).one()
    assert (verdict["spf"], verdict["dkim"], verdict["dmarc"]) == ("temperror", "pass", "pass")
    assert zone.asked("example.com") >= 1


def test_a_domain_whose_policy_is_none_needs_no_dns(
    make_gateway: Any, zone: DnsServer, sink: Sink
) -> None:
    gateway = guarded(make_gateway, zone, policy="none")
    zone.silent = True
    assert gateway.send(mail()).code == 250
    sink.wait_to(ALICE)
    assert zone.asked() == 0


def test_a_mail_that_fails_for_good_is_still_held_while_dns_answers(
    make_gateway: Any, zone: DnsServer, sink: Sink
) -> None:
    # The same unsigned mail with DNS answering: SPF fails, nothing passes: held, as before
    gateway = guarded(make_gateway, zone, dns_timeout=1.0)
    assert gateway.send(mail(message_id="<forged@example.com>")).code == 250
    with gateway.runtime.sessions.begin() as session:
        held = session.scalars(select(StoredMail)).one()
    assert (held.status, held.authentication["spf"]) == ("review", "fail")


@pytest.mark.parametrize(
    ("verdict", "policy", "uncertain"),
    [
        (Verdict("smtp", "example.com", spf="temperror", dkim="temperror"), "dkim_or_spf", True),
        (Verdict("smtp", "example.com", spf="temperror", dkim="temperror"), "none", False),
        (
            Verdict("smtp", "example.com", "temperror", "", "pass", ("example.com",)),
            "dkim_or_spf",
            False,
        ),
        (Verdict("smtp", "example.com", spf="fail", dkim="fail", dmarc="temperror"), "dmarc", True),
        (
            Verdict("smtp", "example.com", spf="fail", dkim="fail", dmarc="temperror"),
            "dkim_or_spf",
            False,
        ),  # that policy does not read DMARC
        (Verdict("header", "example.com", spf="temperror", dkim="temperror"), "dmarc", False),
        (Verdict("header", "example.com", arc="temperror"), "dmarc", True),
        (Verdict("smtp", "example.com", spf="fail", dkim="fail", dmarc="fail"), "dmarc", False),
    ],
)
def test_only_a_temperror_that_could_change_the_outcome_asks_again(
    verdict: Verdict, policy: str, uncertain: bool
) -> None:
    assert verdict.uncertain(policy) is uncertain


# --- the mailbox -------------------------------------------------------------------------------


def folder_count(client: IMAPClient, folder: str) -> int:
    if not client.folder_exists(folder):
        return 0
    return int(client.folder_status(folder, [b"MESSAGES"])[b"MESSAGES"])


def test_over_imap_the_mail_stays_in_the_inbox_until_dns_answers(
    make_gateway: Any, dovecot: Any, zone: DnsServer, keys: dict[str, DkimKey], sink: Sink
) -> None:
    # A customer's mail forwarded by its own service: only the forwarder's ARC seal vouches
    sealed = keys[FORWARDER].seal(
        FORWARDERS_RESULTS.encode() + mail(message_id="<forwarded@example.com>"),
        "mx.forwarder.example",
    )
    url = dovecot.add_user(unique("dns"))
    box = parse_mailbox_url(url)
    client = IMAPClient("127.0.0.1", port=box.port, ssl=False, timeout=30)
    eventually(lambda: _login(client, box.username, box.password), timeout=10, interval=0.2)
    client.append("INBOX", sealed)
    zone.silent = True
    gateway = guarded(
        make_gateway,
        zone,
        imap_url=url,
        imap=True,
        imap_use_idle=False,
        imap_poll_interval=0.3,
        dns_timeout=1.0,
        trusted_arc_sealers=(FORWARDER,),
    )
    # Three passes asked for the sealer's key: the first two ended with the mail left in place
    eventually(lambda: zone.asked(f"arc._domainkey.{FORWARDER}") >= 3, timeout=30)
    client.select_folder("INBOX", readonly=True)
    (uid,) = client.search(["ALL"])
    flags = client.get_flags([uid])[uid]
    assert b"\\Seen" not in flags
    assert PROCESSED_KEYWORD.encode() not in flags
    client.unselect_folder()
    assert folder_count(client, "Processed") == 0
    assert count(gateway, StoredMail) == 0  # never held as "not authenticated"
    # DNS answers again: the next pass takes it, on the forwarder's verdict
    zone.silent = False
    (ack,) = sink.wait_to(ALICE, timeout=20)
    assert ack.message["In-Reply-To"] == "<forwarded@example.com>"
    eventually(lambda: folder_count(client, "Processed") == 1)
    assert folder_count(client, "INBOX") == 0
    with gateway.runtime.sessions.begin() as session:
        verdict = session.scalars(select(StoredMail.authentication)).one()
    assert (verdict["source"], verdict["arc"], verdict["arc_sealer"]) == ("arc", "pass", FORWARDER)
    client.logout()


def _login(client: IMAPClient, user: str, password: str) -> bool:
    try:
        client.login(user, password)
    except Exception:
        return False
    return True
