"""One mail, end to end: SMTP in, a Service Request stored, the acknowledgement at the relay.

The README's "Follow one mail" walks the same path, file by file; the steps below carry its
numbers, and each module's docstring names its step with the same number.
"""

from __future__ import annotations

from gateway.requests import listings
from tests.support.harness import SR_ID, Gateway, eventually, mail
from tests.support.sink import Sink


def test_a_mail_from_a_contact_opens_an_sr_and_is_acknowledged(
    gateway: Gateway, sink: Sink
) -> None:
    # Given a registered contact of the demo customer
    message_id = "<vpn-1@example.com>"
    # When she mails the support address over SMTP (steps 1 and 2: gateway/edges/smtp.py)
    reply = gateway.send(
        mail(
            subject="VPN tunnel to Frankfurt is down",
            body="Hello,\n\nthe VPN on our FortiGate 600E (FG6H0E5819900001) dropped.\n\nAlice\n",
            message_id=message_id,
        )
    )
    # Then the gateway answers 250 only once the mail is parsed (3: parsers/mail.py), its sender
    # checked (4: intake/receive.py), read and gathered (5: intake/reading.py), decided on
    # (6: intake/triage.py), its SR opened (7: requests/opening.py) and its notices written
    # (8: requests/notices.py, outbound/notices.py), all in one committed transaction
    assert reply.code == 250
    # And the acknowledgement reaches the relay, threaded under her mail: enqueued after the
    # commit (9: outbound/outbox.py), rendered, composed and sent by a worker (10: workers/)
    (ack,) = sink.wait_to("alice@example.com")
    assert ack.rcpt_tos == ("alice@example.com",)
    headers = ack.message
    sr_id = SR_ID.search(headers["Subject"]).group(1)
    assert headers["In-Reply-To"] == message_id
    assert message_id in headers["References"]
    assert headers["Auto-Submitted"] == "auto-replied"
    assert headers["Message-ID"].endswith("@securecall.example>")
    # And it carries priority, target, the telephone number and how to reply (R1.5)
    text = " ".join(ack.text.split())  # wrapped lines and no-break spaces read as single spaces
    assert "Priority: 3" in text
    assert "24 hours" in text
    assert gateway.settings.soc_phone in text
    assert f"keep {sr_id} in the subject" in text
    assert "covered by your support entitlement" in text

    # And the SR is stored, Priority 3, with the message and the sent acknowledgement (had a
    # broker message been lost, the sweep would have sent it: 11, outbound/outbox.py)
    def stored() -> dict | None:
        with gateway.runtime.sessions.begin() as session:
            shown = listings.request(session, sr_id)
        return shown if shown and {d["status"] for d in shown["deliveries"]} == {"sent"} else None

    shown = eventually(stored)
    assert shown["priority"] == 3
    assert shown["state"] == "open"
    assert shown["requester"] == "alice@example.com"
    (message,) = shown["messages"]
    assert message["message_id"] == message_id
    assert "FG6H0E5819900001" in message["text"]
    assert [(d["template"], d["to"]) for d in shown["deliveries"]] == [
        ("request_opened", "alice@example.com"),  # the acknowledgement
        ("request_opened", "soc-queue@securecall.example"),  # the SOC's notification (R2.1)
    ]
    assert shown["deadlines"][0]["kind"] == "initial_response"
