"""R6.4: a forged sender opens and updates nothing; a proven one does (DKIM, SPF, DMARC).

The keys and records are published by a real DNS server on loopback (the `dns` fixture).
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from gateway import directory
from gateway.core.runtime import Runtime
from gateway.storage.models import Message, ServiceRequest, StoredMail
from tests.support.harness import Gateway, count, mail, sr_id_of
from tests.support.sink import Sink

ALICE = "alice@example.com"
ANALYST = "analyst@securecall.example"
SOC_QUEUE = "soc-queue@securecall.example"


@pytest.fixture
def guarded(make_gateway: Any, dns: Any) -> Gateway:
    """A gateway that checks senders: DMARC for example.com, the defaults for the rest."""
    gateway: Gateway = make_gateway(
        dns_servers=(dns.address,), auth_policy="dkim_or_spf", soc_auth_policy="dmarc"
    )
    rt = gateway.runtime
    with rt.sessions.begin() as session:
        for domain in ("example.com", "securecall.example"):  # the demo had set them to none
            directory.remove_domain_policy(session, domain)
        directory.set_domain_policy(session, "example.com", "dmarc", rt.now())
    return gateway


def test_a_forged_customer_address_opens_nothing_and_nobody_is_told(
    guarded: Gateway, sink: Sink
) -> None:
    forged = mail(subject="Please send me the VPN configuration", message_id="<forged@evil>")
    assert guarded.send(forged, mail_from="alice@example.com").code == 250  # kept, for review
    assert count(guarded, ServiceRequest) == 0
    with guarded.runtime.sessions.begin() as session:
        held = session.scalars(select(StoredMail)).one()
        assert held.status == "review"
        assert held.reason.startswith("a sender who could not be authenticated")
        assert held.authentication["spf"] == "fail"
        assert held.authentication["dmarc"] == "fail"
        assert held.authentication["dmarc_policy"] == "reject"
    assert sink.settle() == []  # no acknowledgement, no notice, no SOC notification


def test_the_same_mail_signed_by_the_customers_domain_is_accepted(
    guarded: Gateway, sink: Sink, dns: Any
) -> None:
    signed = dns.keys["example.com"].sign(mail(message_id="<signed@example.com>"))
    assert guarded.send(signed).code == 250
    (ack,) = sink.wait_to(ALICE)
    assert ack.message["In-Reply-To"] == "<signed@example.com>"
    with guarded.runtime.sessions.begin() as session:
        stored = session.scalars(select(StoredMail)).one()
        assert (stored.status, stored.authentication["dkim"], stored.authentication["dmarc"]) == (
            "accepted",
            "pass",
            "pass",
        )


def test_a_signature_broken_in_transit_does_not_authenticate(
    guarded: Gateway, sink: Sink, dns: Any
) -> None:
    signed = dns.keys["example.com"].sign(mail(body="Our VPN is down.\n"))
    tampered = signed.replace(b"Our VPN is down.", b"Send the config to attacker@evil.example.")
    assert guarded.send(tampered).code == 250
    assert count(guarded, ServiceRequest) == 0
    assert sink.settle() == []


def test_a_stranger_replying_with_a_valid_token_and_forged_in_reply_to_is_refused(
    guarded: Gateway, sink: Sink, dns: Any
) -> None:
    key = dns.keys["example.com"]
    assert guarded.send(key.sign(mail(message_id="<open@example.com>"))).code == 250
    ack = sink.wait_to(ALICE)[0]
    sr_id = sr_id_of(ack)
    # A stranger pretends to be Alice, answering the real acknowledgement
    forged = mail(
        subject=f"Re: [{sr_id}] VPN",
        body="New instructions: use this VPN server.",
        in_reply_to=ack.message["Message-ID"],
        references=ack.message["Message-ID"],
    )
    assert guarded.send(forged).code == 250
    assert count(guarded, Message) == 1
    # Alice herself, answering the acknowledgement: signed, it threads by its HMAC Message-ID
    genuine = key.sign(
        mail(
            subject="still down",
            body="Still down, see the attached log.",
            in_reply_to=ack.message["Message-ID"],
        )
    )
    assert guarded.send(genuine).code == 250
    assert count(guarded, Message) == 2
    assert count(guarded, ServiceRequest) == 1
    assert count(guarded, StoredMail, StoredMail.status == "review") == 1


def test_an_in_reply_to_that_merely_looks_like_ours_does_not_thread(
    make_gateway: Any, sink: Sink
) -> None:
    gateway: Gateway = make_gateway()
    assert gateway.send(mail(message_id="<a@example.com>")).code == 250
    ack = sink.wait_to(ALICE)[0]
    real = ack.message["Message-ID"]
    forged = real[:-30] + "0" * 20 + real[-10:]  # same shape, wrong HMAC
    reply = mail(
        subject="a different problem", body="Our mail relay rejects everything.", in_reply_to=forged
    )
    assert gateway.send(reply).code == 250
    assert count(gateway, ServiceRequest) == 2  # not threaded: a new SR of Alice's


def test_soc_commands_need_the_soc_domains_dmarc_pass(
    guarded: Gateway, sink: Sink, dns: Any
) -> None:
    key = dns.keys["example.com"]
    assert guarded.send(key.sign(mail())).code == 250
    sr_id = sr_id_of(sink.wait_to(ALICE)[0])
    command = mail(sender=ANALYST, subject=f"[{sr_id}] x", body="#close\nAll done, bye.")
    assert guarded.send(command, mail_from=ANALYST).code == 250  # forged analyst
    with guarded.runtime.sessions.begin() as session:
        assert session.scalars(select(ServiceRequest.state)).one() == "open"
    assert sink.to(ANALYST) == []
    assert len(sink.settle_to(ALICE)) == 1  # the forged text was not relayed
    # The genuine mail, with the very same Message-ID: the forgery does not make it a duplicate
    signed = dns.keys["securecall.example"].sign(command)
    assert guarded.send(signed, mail_from=ANALYST).code == 250
    with guarded.runtime.sessions.begin() as session:
        assert session.scalars(select(ServiceRequest.state)).one() == "closed"
    assert "done     #close" in sink.wait_to(ANALYST)[0].text


def test_a_domain_with_spf_but_no_dmarc_record_passes_the_dkim_or_spf_policy(
    guarded: Gateway, sink: Sink
) -> None:
    # otto@other.example: the demo directory's other customer; SPF of other.example covers loopback
    data = mail(
        sender="otto@other.example",
        subject="Firewall neustarten?",
        body="Guten Tag, muss die Firewall neu gestartet werden?",
    )
    assert guarded.send(data, mail_from="otto@other.example").code == 250
    (ack,) = sink.wait_to("otto@other.example")
    assert "Service Request" in ack.message["Subject"]
    with guarded.runtime.sessions.begin() as session:
        verdict = session.scalars(select(StoredMail.authentication)).one()
        assert (verdict["spf"], verdict["dmarc"]) == ("pass", "none")


def test_a_domain_set_to_none_is_accepted_unauthenticated_and_the_verdict_recorded(
    guarded: Gateway, sink: Sink
) -> None:
    rt = guarded.runtime
    with rt.sessions.begin() as session:
        directory.set_domain_policy(session, "example.com", "none", rt.now())
    assert guarded.send(mail()).code == 250
    sink.wait_to(ALICE)
    with rt.sessions.begin() as session:
        stored = session.scalars(select(StoredMail)).one()
        assert stored.status == "accepted"
        assert stored.authentication["source"] == "none"


@pytest.mark.parametrize(
    ("authserv_id", "accepted"), [("mx.securecall.example", True), ("mx.evil.example", False)]
)
def test_behind_a_relay_only_a_trusted_authserv_ids_verdict_counts(
    make_gateway: Any, sink: Sink, dns: Any, authserv_id: str, accepted: bool
) -> None:
    gateway: Gateway = make_gateway(
        dns_servers=(dns.address,),
        trusted_relays=("127.0.0.1",),
        trusted_authserv_ids=("mx.securecall.example",),
    )
    rt = gateway.runtime
    with rt.sessions.begin() as session:
        directory.set_domain_policy(session, "example.com", "dmarc", rt.now())
    results = (
        f"Authentication-Results: {authserv_id}; dkim=pass header.d=example.com; "
        "spf=pass smtp.mailfrom=alice@example.com; dmarc=pass header.from=example.com\r\n"
    )
    assert gateway.send(results.encode() + mail()).code == 250
    if accepted:
        sink.wait_to(ALICE)
    else:
        assert sink.settle() == []
    assert count(gateway, ServiceRequest) == (1 if accepted else 0)


@pytest.mark.parametrize(
    ("authserv_id", "accepted"), [("mx.securecall.example", True), ("mx.evil.example", False)]
)
def test_from_a_mailbox_only_a_trusted_authserv_ids_verdict_counts(
    make_gateway: Any, sink: Sink, dovecot: Any, authserv_id: str, accepted: bool
) -> None:
    from imapclient import IMAPClient

    from gateway.edges.imap import parse_mailbox_url
    from tests.support.harness import eventually, unique

    url = dovecot.add_user(unique("auth"))
    box = parse_mailbox_url(url)
    results = (
        f"Authentication-Results: {authserv_id}; dkim=pass header.d=example.com; "
        "dmarc=pass header.from=example.com\r\n"
    )
    # the upstream MX put its verdict on top; a sender's own forged one lies further down
    forged = "Authentication-Results: mx.securecall.example; dmarc=pass\r\n"
    data = results.encode() + b"Received: from mx by imap\r\n" + forged.encode() + mail()

    def deliver() -> bool:
        with IMAPClient("127.0.0.1", port=box.port, ssl=False, timeout=30) as client:
            try:
                client.login(box.username, box.password)
            except Exception:
                return False
            client.append("INBOX", data)
            return True

    eventually(deliver, timeout=10, interval=0.2)

    def dmarc_for_example_com(rt: Runtime) -> None:
        with rt.sessions.begin() as session:
            directory.set_domain_policy(session, "example.com", "dmarc", rt.now())

    gateway: Gateway = make_gateway(
        imap_url=url,
        imap=True,
        auth_policy="dmarc",
        trusted_authserv_ids=("mx.securecall.example",),
        prepare=dmarc_for_example_com,  # in place before the poller reads the mailbox
    )
    rt = gateway.runtime
    eventually(lambda: count(gateway, StoredMail) == 1, timeout=20)
    assert count(gateway, ServiceRequest) == (1 if accepted else 0)
    with rt.sessions.begin() as session:
        verdict = session.scalars(select(StoredMail.authentication)).one()
    assert verdict["source"] == ("header" if accepted else "none")


# --- forwarded mail: ARC (RFC 8617) ------------------------------------------------------------

FORWARDERS_RESULTS = (
    "Authentication-Results: mx.lists.example; spf=pass smtp.mailfrom=alice@example.com;"
    " dkim=pass header.d=example.com; dmarc=pass header.from=example.com\r\n"
)


def forwarding_gateway(make_gateway: Any, dns: Any, sealers: tuple[str, ...]) -> Gateway:
    gateway: Gateway = make_gateway(
        dns_servers=(dns.address,), auth_policy="dkim_or_spf", trusted_arc_sealers=sealers
    )
    rt = gateway.runtime
    with rt.sessions.begin() as session:
        directory.set_domain_policy(session, "example.com", "dmarc", rt.now())
    return gateway


@pytest.fixture
def sealer(dns: Any) -> Any:
    """The ARC key of lists.example, a forwarder of the customer's (a selector per test)."""
    from tests.support.dns_server import DkimKey
    from tests.support.harness import unique

    key = DkimKey("lists.example", selector=unique("arc"))
    key.publish(dns)
    return key


@pytest.mark.parametrize("trusted", [True, False])
def test_a_forwarded_mail_counts_on_its_arc_seal_only_from_a_trusted_sealer(
    make_gateway: Any, dns: Any, sealer: Any, sink: Sink, trusted: bool
) -> None:
    gateway = forwarding_gateway(make_gateway, dns, ("lists.example",) if trusted else ())
    original = FORWARDERS_RESULTS.encode() + mail(message_id="<via-list@example.com>")
    sealed = sealer.seal(original, "mx.lists.example")
    # The forwarder sends it on from its own host: SPF for example.com fails here, no DKIM
    assert gateway.send(sealed, mail_from=ALICE).code == 250
    with gateway.runtime.sessions.begin() as session:
        stored = session.scalars(select(StoredMail)).one()
    if trusted:
        sink.wait_to(ALICE)
        assert (stored.status, stored.authentication["source"]) == ("accepted", "arc")
        assert stored.authentication["arc_sealer"] == "lists.example"
        assert stored.authentication["dmarc"] == "pass"
    else:
        assert stored.status == "review"
        assert (stored.authentication["spf"], stored.authentication["dmarc"]) == ("fail", "fail")
        assert count(gateway, ServiceRequest) == 0


def test_a_seal_broken_after_sealing_vouches_for_nothing(
    make_gateway: Any, dns: Any, sealer: Any, sink: Sink
) -> None:
    gateway = forwarding_gateway(make_gateway, dns, ("lists.example",))
    sealed = sealer.seal(FORWARDERS_RESULTS.encode() + mail(), "mx.lists.example")
    tampered = sealed.replace(b"our VPN tunnel", b"send the VPN config to evil.example;")
    assert gateway.send(tampered).code == 250
    with gateway.runtime.sessions.begin() as session:
        stored = session.scalars(select(StoredMail)).one()
    assert (stored.status, stored.authentication["arc"]) == ("review", "fail")
    assert count(gateway, ServiceRequest) == 0


# --- what a verdict says, and for which domain -------------------------------------------------


def test_a_trusted_headers_dmarc_pass_counts_only_for_the_mails_from_domain(
    make_gateway: Any, dns: Any, sink: Sink
) -> None:
    gateway: Gateway = make_gateway(
        dns_servers=(dns.address,),
        trusted_relays=("127.0.0.1",),
        trusted_authserv_ids=("mx.securecall.example",),
    )
    rt = gateway.runtime
    with rt.sessions.begin() as session:
        directory.set_domain_policy(session, "example.com", "dmarc", rt.now())
    # The upstream did find a DMARC pass, for the domain of another From it saw
    results = b"Authentication-Results: mx.securecall.example; dmarc=pass header.from=evil.example"
    assert gateway.send(results + b"\r\n" + mail()).code == 250
    with rt.sessions.begin() as session:
        stored = session.scalars(select(StoredMail)).one()
    assert (stored.status, stored.authentication["dmarc"]) == ("review", "none")


@pytest.fixture(scope="module")
def parent_example(dns: Any) -> None:
    """parent.example's DMARC record, with sp=; own.parent.example has a record of its own."""
    dns.txt("_dmarc.parent.example", "v=DMARC1; p=reject; sp=quarantine")
    dns.txt("_dmarc.own.parent.example", "v=DMARC1; p=none; sp=reject")


@pytest.mark.usefixtures("parent_example")
@pytest.mark.parametrize(
    ("sender", "policy"),
    [
        ("it@parent.example", "reject"),  # the organisation's own mail: p=
        ("monitor@alerts.parent.example", "quarantine"),  # a subdomain under its record: sp=
        ("ops@own.parent.example", "none"),  # a subdomain with a record of its own: its p=
    ],
)
def test_dmarc_sp_applies_to_subdomains_under_the_organisations_record(
    make_gateway: Any, dns: Any, sender: str, policy: str
) -> None:
    # RFC 7489 §6.3
    gateway: Gateway = make_gateway(dns_servers=(dns.address,), auth_policy="dmarc")
    assert gateway.send(mail(sender=sender), mail_from=sender).code == 250
    with gateway.runtime.sessions.begin() as session:
        verdict = session.scalars(select(StoredMail.authentication)).one()
    assert (verdict["dmarc"], verdict["dmarc_policy"]) == ("fail", policy)


@pytest.mark.parametrize(
    ("domain", "home"),
    [
        ("mail.example.com", "example.com"),
        ("a.b.example.co.uk", "example.co.uk"),
        ("customer.github.io", "customer.github.io"),  # the list's private section
        ("co.uk", "co.uk"),
        ("Alerts.Example.COM.", "example.com"),
    ],
)
def test_the_organisational_domain_comes_from_the_public_suffix_list(
    domain: str, home: str
) -> None:
    from gateway.intake.authentication import organisation

    assert organisation(domain) == home
