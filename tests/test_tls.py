"""R6.7, TLS on every hop, with a private CA made by the tests: STARTTLS on the listener (and
required for some addresses), and the relay spoken to over verified TLS unless told otherwise."""

from __future__ import annotations

import smtplib
import ssl
from typing import Any

import pytest

from gateway.core.settings import Settings
from gateway.outbound.sending import Claimed
from tests.support.harness import INTAKE, mail
from tests.support.sink import Sink
from tests.support.tls import TestCA
from workers.composer import as_bytes, compose
from workers.render import Rendered
from workers.transport import TemporaryFailure, make_transport

ALICE = "alice@example.com"
NOTES = "notes@securecall.example"


def _tls_gateway(make_gateway: Any, test_ca: TestCA, **overrides: Any) -> Any:
    return make_gateway(smtp_tls_cert=test_ca.cert_file, smtp_tls_key=test_ca.key_file, **overrides)


def test_a_client_that_requires_tls_delivers_to_the_listener(
    make_gateway: Any, test_ca: TestCA, sink: Sink
) -> None:
    gateway = _tls_gateway(make_gateway, test_ca)
    with smtplib.SMTP("127.0.0.1", gateway.settings.smtp_port, timeout=30) as client:
        client.ehlo("mx.example.com")
        assert client.has_extn("starttls")
        # verified against the test CA, host name included: what a client that requires TLS does
        client.starttls(context=test_ca.client_context())
        client.ehlo("mx.example.com")
        assert isinstance(client.sock, ssl.SSLSocket)
        assert client.sock.version() in ("TLSv1.2", "TLSv1.3")
        refused = client.sendmail(ALICE, [INTAKE], mail(message_id="<over-tls@example.com>"))
    assert refused == {}
    (ack,) = sink.wait_to(ALICE)
    assert ack.message["In-Reply-To"] == "<over-tls@example.com>"


def test_the_note_address_needs_starttls_first_and_then_takes_the_mail(
    make_gateway: Any, test_ca: TestCA
) -> None:
    gateway = _tls_gateway(make_gateway, test_ca, smtp_require_tls_for=(NOTES,))
    port = gateway.settings.smtp_port
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo("mx.example.com")
        client.mail("analyst@securecall.example")
        assert client.rcpt(NOTES) == (530, b"5.7.0 Must issue a STARTTLS command first")
        assert client.rcpt(INTAKE)[0] == 250  # only the addresses named need it
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.starttls(context=test_ca.client_context())
        client.ehlo("mx.example.com")
        assert client.mail("analyst@securecall.example")[0] == 250
        assert client.rcpt(NOTES)[0] == 250


def test_requiring_tls_without_a_certificate_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="only where it is offered"):
        Settings(smtp_require_tls_for=(NOTES,))
    with pytest.raises(ValueError, match="needs both SMTP_TLS_CERT and SMTP_TLS_KEY"):
        Settings(smtp_tls_cert=__file__)


def _message() -> bytes:
    return as_bytes(compose(_claimed(), Rendered("Hello", "Hello\n", None), Settings()))


def _claimed() -> Claimed:
    return Claimed(
        id=1,
        template="t",
        audience="customer",
        language="en",
        recipient=ALICE,
        context={},
        message_id="<tls-1@securecall.example>",
        in_reply_to=None,
        references="",
        auto_submitted="auto-replied",
        attempts=1,
    )


def test_the_relay_is_refused_when_its_certificate_cannot_be_verified(tls_sink: Sink) -> None:
    transport = make_transport(f"smtp://127.0.0.1:{tls_sink.port}")  # the system's CAs only
    with pytest.raises(TemporaryFailure, match="CERTIFICATE_VERIFY_FAILED"):
        transport.send(_message(), "soc@securecall.example", [ALICE])
    transport.close()
    assert tls_sink.mails == []


def test_the_relay_gets_the_mail_over_tls_when_its_ca_is_trusted(
    tls_sink: Sink, test_ca: TestCA
) -> None:
    transport = make_transport(f"smtp://127.0.0.1:{tls_sink.port}", test_ca.ca_file)
    transport.send(_message(), "soc@securecall.example", [ALICE])
    transport.close()
    (received,) = tls_sink.wait_for(1)
    assert received.tls
    assert received.message["Message-ID"] == "<tls-1@securecall.example>"


def test_a_relay_that_offers_no_starttls_gets_nothing_unless_told(sink: Sink) -> None:
    transport = make_transport(f"smtp://127.0.0.1:{sink.port}")
    with pytest.raises(TemporaryFailure, match="STARTTLS"):
        transport.send(_message(), "soc@securecall.example", [ALICE])
    transport.close()
    assert sink.mails == []
    plain = make_transport(f"smtp://127.0.0.1:{sink.port}?tls=none")  # written out
    plain.send(_message(), "soc@securecall.example", [ALICE])
    plain.close()
    assert not sink.wait_for(1)[0].tls


def test_the_gateway_sends_its_acknowledgement_to_a_verified_relay(
    tls_sink: Sink, test_ca: TestCA, make_gateway: Any
) -> None:
    # tls_sink first: it stops after the gateway, which says QUIT on its open TLS connections
    gateway = make_gateway(
        outbound_url=f"smtp://127.0.0.1:{tls_sink.port}", outbound_ca_file=test_ca.ca_file
    )
    assert gateway.send(mail(message_id="<to-tls-relay@example.com>")).code == 250
    (ack,) = tls_sink.wait_to(ALICE)
    assert ack.tls
    assert ack.message["In-Reply-To"] == "<to-tls-relay@example.com>"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("smtp://relay.example?starttls=0", r"does not take \?starttls=0: use \?tls=none"),
        ("smtps://relay.example?tls=none", r"smtps:// does not take \?tls=none"),
        ("imap://u:p@imap.example/INBOX?starttls=no", r"does not take \?starttls=no"),
    ],
)
def test_a_url_that_half_turns_tls_off_is_refused(url: str, message: str) -> None:
    name = "imap_url" if url.startswith("imap") else "outbound_url"
    with pytest.raises(ValueError, match=message):
        Settings(**{name: url})
