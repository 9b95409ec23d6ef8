"""R6.1: never an answer to automatic mail. Bounces of many MTAs, feedback reports, read receipts
and vacation replies over the real listener; no notice to an address that is no plain mailbox."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from typer.testing import CliRunner

from cli.app import app
from gateway.intake import listings as held_listings
from gateway.outbound.addresses import addressable
from gateway.requests import listings as request_listings
from gateway.storage.models import Delivery, ServiceRequest, StoredMail
from parsers import dsn
from parsers.automatic import automatic_reason, bounce_reason
from parsers.mail import parse
from tests.conftest import FIXTURES
from tests.support.harness import Gateway, count, eventually, mail, sr_id_of
from tests.support.sink import Sink

EXPECTED: dict[str, dict[str, Any]] = json.loads(
    (FIXTURES / "expected.automatic.json").read_text(encoding="utf-8")
)
SOC_QUEUE = "soc-queue@securecall.example"


def stored_of(gateway: Gateway, reply_text: str) -> StoredMail:
    stored_id = int(re.search(r"stored as (\d+)", reply_text).group(1))
    with gateway.runtime.sessions.begin() as session:
        stored = session.get_one(StoredMail, stored_id)
        session.expunge(stored)
    return stored


def send(gateway: Gateway, data: bytes, envelope: str) -> StoredMail:
    """One mail over SMTP; the stored row (written, with its Deliveries, before the 250)."""
    reply = gateway.send(data, mail_from=envelope)
    assert reply.code == 250, reply
    return stored_of(gateway, reply.text)


def test_the_automatic_corpus_covers_each_kind_of_machine_mail() -> None:
    names = set(EXPECTED)
    assert len(names) >= 14
    assert {n for n in names if n.startswith("bounce_")} >= {
        f"bounce_{style}.eml"
        for style in (
            "james_en",
            "kddi_en",
            "fml_en",
            "sendmail_old_en",
            "carrier_sms_en",
            "postfix_en",
            "exim_en",
            "m365_en",
            "gmail_en",
            "no_message_id_en",
            "quoted_sysadmin_en",
        )
    }
    assert all(EXPECTED[n]["automatic"] for n in names)
    assert EXPECTED["bounce_no_message_id_en.eml"]["message_id"] is None


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_automatic_mail_is_stored_with_its_status_and_reason_and_nothing_is_written_to_anyone(
    gateway: Gateway, name: str
) -> None:
    expected = EXPECTED[name]
    # Given the mail with the envelope it really comes with (the null sender for DSNs)
    stored = send(gateway, (FIXTURES / name).read_bytes(), expected["envelope"])
    # Then it is kept, with its status and why, and its failed recipients when it is a bounce
    assert (stored.status, stored.reason) == (expected["status"], expected["reason"])
    assert stored.failed_recipients == expected["failed_recipients"]
    # And no mail at all was written for it: no answer, no notice, no SOC copy (the Deliveries
    # are written in the transaction that stored the mail, committed before the 250)
    assert count(gateway, Delivery) == 0
    assert count(gateway, ServiceRequest) == 0


def test_a_bounce_keeps_the_recipients_that_failed_for_the_review_list_and_quarantine_show(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    postfix = send(gateway, (FIXTURES / "bounce_postfix_en.eml").read_bytes(), "")
    james = send(gateway, (FIXTURES / "bounce_james_en.eml").read_bytes(), "")
    monkeypatch.setenv("GATEWAY_DATABASE_URL", gateway.settings.database)
    monkeypatch.setenv("GATEWAY_VAR_DIR", str(gateway.settings.var_dir))
    runner = CliRunner()
    listed = json.loads(
        runner.invoke(app, ["review", "list", "--status", "bounce", "--json"]).output
    )
    assert [(row["id"], row["failed_recipients"]) for row in listed] == [
        (james.id, ["m.keller@lists.example.org"]),
        (postfix.id, ["k.braun@partner.example.net", "ops-archive@partner.example.net"]),
    ]
    shown = json.loads(runner.invoke(app, ["quarantine", "show", str(postfix.id), "--json"]).output)
    assert shown["status"] == "bounce"
    assert shown["failed_recipients"] == [
        "k.braun@partner.example.net",
        "ops-archive@partner.example.net",
    ]


def test_a_bounce_keeps_its_failed_recipients_on_postgresql_too(
    make_gateway: Callable[..., Gateway], postgres_url: str
) -> None:
    gateway = make_gateway(database_url=postgres_url)
    stored = send(gateway, (FIXTURES / "bounce_postfix_en.eml").read_bytes(), "")
    assert stored.status == "bounce"
    assert stored.failed_recipients == [
        "k.braun@partner.example.net",
        "ops-archive@partner.example.net",
    ]
    assert count(gateway, Delivery) == 0


@pytest.mark.parametrize(
    ("sender", "envelope", "headers"),
    [
        ("MAILER-DAEMON@mx.partner.example.net", "MAILER-DAEMON@mx.partner.example.net", {}),
        ("Postmaster@Partner.Example.NET", "Postmaster@Partner.Example.NET", {}),
        ("alice@example.com", "alice@example.com", {"X-Failed-Recipients": "x@partner.example"}),
        ("stranger@nowhere.example", "", {}),
        ("stranger@nowhere.example", "mailer-daemon@relay.nowhere.example", {}),
    ],
    ids=["mailer-daemon", "postmaster-any-case", "x-failed-recipients", "null-sender", "envelope"],
)
def test_mail_from_a_mail_system_is_a_bounce_and_never_answered(
    gateway: Gateway, sender: str, envelope: str, headers: dict[str, str]
) -> None:
    data = mail(sender=sender, subject="Message status", body="Hello.\n", headers=headers)
    stored = send(gateway, data, envelope)
    assert stored.status == "bounce", stored.reason
    assert count(gateway, Delivery) == 0
    assert count(gateway, ServiceRequest) == 0


def test_a_from_of_mailer_daemon_without_a_domain_is_a_bounce(gateway: Gateway) -> None:
    data = mail(sender="x@y.example", subject="Returned mail", body="Sorry.\n").replace(
        b"From: x@y.example", b"From: Mail Delivery Subsystem <MAILER-DAEMON>"
    )
    stored = send(gateway, data, "relay@y.example")
    assert (stored.status, stored.reason) == (
        "bounce",
        "a bounce or delivery report (mail from a mailer daemon)",
    )
    assert count(gateway, Delivery) == 0


@pytest.mark.parametrize(
    "sender",
    [
        '"system administrator"@mail.example.org',
        '"a b"@example.org',
        "bob@localhost",
        "bob@[192.0.2.1]",
        "bob@192.0.2.1",
        "x" * 65 + "@example.org",
        "bob@" + "b" * 64 + ".example",
    ],
)
def test_no_notice_is_written_to_a_sender_who_is_no_plain_mailbox(
    gateway: Gateway, sender: str
) -> None:
    # Given a stranger's ordinary mail, relayed, whose From a notice could not be addressed to
    data = mail(sender=sender, subject="Hello", body="Are you there?\n")
    stored = send(gateway, data, "relay@mail.example.org")
    # Then it waits for review, and no notice is written (not even one that would fail later)
    assert (stored.status, stored.reason) == ("review", "an unregistered sender")
    assert stored.sender == sender.lower()
    assert count(gateway, Delivery) == 0


def test_a_stranger_with_a_plain_mailbox_still_gets_the_notice(
    gateway: Gateway, sink: Sink
) -> None:
    stored = send(gateway, mail(sender="bob@example.org", subject="Hello"), "bob@example.org")
    assert stored.status == "review"
    (notice,) = sink.wait_to("bob@example.org")
    assert notice.rcpt_tos == ("bob@example.org",)


@pytest.mark.parametrize(
    ("address", "plain"),
    [
        ("alice@example.com", True),
        ("o'brien+soc@mail.example.ie", True),
        ("jürgen@müller.example", True),  # RFC 6531 local part, RFC 5890 domain
        ('"system administrator"@mail.example.org', False),
        ("a b@example.org", False),
        ("bob\x01@example.org", False),
        ("bob\u200b@example.org", False),
        ("bob@localhost", False),
        ("bob@[192.0.2.1]", False),
        ("a..b@example.org", False),
        ("bob@example.org.", False),
        ("bob@-bad.example", False),
        ("", False),
        ("x" * 64 + "@example.org", True),
        ("x" * 65 + "@example.org", False),
        ("x@" + "a" * 63 + "." + "b" * 63 + "." + "c" * 63 + "." + "d" * 57 + ".org", False),
    ],
)
def test_a_notice_is_addressed_only_to_a_plain_mailbox(address: str, plain: bool) -> None:
    assert addressable(address) is plain


# --- no false positives: customers who write about bounces and absences -----------------------


@pytest.mark.parametrize(
    ("subject", "body"),
    [
        (
            "Mail delivery failure on our MX since the firewall update",
            "Hello,\n\nsince yesterday's update our mail gateway reports a delivery failure for "
            "every message to our partners. Could you check the SMTP policy?\n\nRegards\nAlice\n",
        ),
        (
            "Undeliverable mails after the policy change",
            "Hello,\n\nwe get delivery status notifications for all outgoing mails since the "
            "change. Please have a look.\n\nRegards\nAlice\n",
        ),
        (
            "Out of office replies loop between our Exchange and the portal",
            "Hello,\n\nwhile I was out of office, our Exchange and the portal kept answering "
            "each other. Can the firewall rate-limit this?\n\nRegards\nAlice\n",
        ),
        (
            "VPN access while I am out of the office",
            "Hello,\n\nI will be travelling next week. Please extend my VPN access.\n\nAlice\n",
        ),
    ],
    ids=["delivery-failure", "undeliverable", "out-of-office", "out-of-the-office"],
)
def test_a_customer_writing_about_bounces_or_absence_gets_an_sr_and_its_acknowledgement(
    gateway: Gateway, sink: Sink, subject: str, body: str
) -> None:
    stored = send(gateway, mail(subject=subject, body=body), "alice@example.com")
    assert stored.status == "accepted", stored.reason
    (ack,) = sink.wait_to("alice@example.com")
    assert ack.message["Auto-Submitted"] == "auto-replied"
    assert count(gateway, ServiceRequest) == 1
    assert sr_id_of(ack)


# --- automatic mail on an SR: kept on it, never answered ---------------------------------------


def open_sr(gateway: Gateway, sink: Sink, sender: str) -> tuple[str, str]:
    """An SR opened by `sender`; its ID and the Message-ID of its acknowledgement."""
    assert gateway.send(mail(sender=sender), mail_from=sender).code == 250
    (ack,) = sink.wait_to(sender)
    sink.wait_to(SOC_QUEUE)
    return sr_id_of(ack), ack.message["Message-ID"]


def messages_of(gateway: Gateway, sr_id: str) -> list[dict[str, Any]]:
    with gateway.runtime.sessions.begin() as session:
        shown = request_listings.request(session, sr_id)
    assert shown is not None
    return list(shown["messages"])


@pytest.mark.parametrize(
    ("subject", "headers", "envelope"),
    [
        ("Automatische Antwort: VPN", {}, "bernd@example.de"),  # no RFC 3834 header at all
        ("Abwesenheitsnotiz", {}, "bernd@example.de"),
        # RFC 3834 §3.3: a responder answers from the null sender; it is no bounce for that.
        ("Auto: VPN", {"Auto-Submitted": "auto-replied (vacation)"}, ""),
    ],
    ids=["outlook-without-header", "webmail-without-header", "sieve-null-sender"],
)
def test_an_out_of_office_reply_on_an_sr_is_added_to_it_and_nobody_is_answered(
    gateway: Gateway, sink: Sink, subject: str, headers: dict[str, str], envelope: str
) -> None:
    sr_id, ack_id = open_sr(gateway, sink, "bernd@example.de")
    before = count(gateway, Delivery)
    oof = mail(
        sender="bernd@example.de",
        subject=subject,
        body="Ich bin bis zum 4. Dezember nicht im Haus.\n",
        in_reply_to=ack_id,
        headers=headers,
    )
    stored = send(gateway, oof, envelope)
    assert stored.status == "accepted", stored.reason
    assert stored.reason.startswith("automatic mail on an SR ("), stored.reason
    assert [m["author"] for m in messages_of(gateway, sr_id)] == ["contact", "automatic"]
    assert count(gateway, Delivery) == before  # no acknowledgement, no SOC copy


def test_a_read_receipt_on_an_sr_is_held_for_review_and_not_added_to_it(
    gateway: Gateway, sink: Sink
) -> None:
    sr_id, ack_id = open_sr(gateway, sink, "bernd@example.de")
    before = count(gateway, Delivery)
    receipt = (
        (FIXTURES / "receipt_mdn_de.eml")
        .read_bytes()
        .replace(b"<sr-7kqm-29xd.1.20261121090200.2f7c@securecall.example>", ack_id.encode())
    )
    receipt = receipt.replace(b"SR-7KQM-29XD", sr_id.encode())
    stored = send(gateway, receipt, "")
    assert (stored.status, stored.reason) == (
        "review",
        EXPECTED["receipt_mdn_de.eml"]["reason"],
    )
    assert len(messages_of(gateway, sr_id)) == 1
    assert count(gateway, Delivery) == before
    with gateway.runtime.sessions.begin() as session:
        held = held_listings.held_mails(session)
    assert [(h["id"], h["failed_recipients"]) for h in held] == [(stored.id, None)]


def test_a_bounce_of_an_acknowledgement_is_stored_as_a_bounce_and_the_sr_gets_nothing(
    gateway: Gateway, sink: Sink
) -> None:
    sr_id, ack_id = open_sr(gateway, sink, "alice@example.com")
    before = count(gateway, Delivery)
    bounce = (FIXTURES / "bounce_m365_en.eml").read_bytes()
    sent_id = b"<sr-7kqm-29xd.7.20261126104358.d21f@securecall.example>"
    bounce = bounce.replace(sent_id, ack_id.encode())
    bounce = bounce.replace(b"SR-7KQM-29XD", sr_id.encode())
    stored = send(gateway, bounce, "")
    assert stored.status == "bounce"
    assert stored.failed_recipients == ["p.nowak@contoso.example"]
    assert len(messages_of(gateway, sr_id)) == 1
    assert count(gateway, Delivery) == before
    # When every mail written so far has gone out, the customer still has had only the one
    eventually(lambda: count(gateway, Delivery, Delivery.status == "sent") == before)
    assert len(sink.to("alice@example.com")) == 1


# --- reading reports: what parse says of them ---------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"Auto-Submitted": "auto-replied (vacation)"}, "Auto-Submitted: auto-replied"),
        ({"Auto-Submitted": "(set by the filter) no"}, None),  # RFC 3834 §5: comments allowed
        ({"Precedence": "auto-reply"}, "Precedence: auto-reply"),
        ({"Precedence": "bulk; charset=utf-8"}, "Precedence: bulk"),
        ({"X-Precedence": "bulk"}, "Precedence: bulk"),
        ({"X-Auto-Reply": "yes"}, "auto-reply (x-auto-reply)"),
    ],
)
def test_rfc_3834_headers_are_read_with_their_comments(
    headers: dict[str, str], reason: str | None
) -> None:
    assert automatic_reason(parse(mail(headers=headers))) == reason


@pytest.mark.parametrize(
    ("subject", "automatic"),
    [
        ("Abwesend: Re: VPN", True),
        ("Autom. Antwort: VPN", True),
        ("[EXTERNAL] Automatic reply: VPN", True),
        ("Abwesenheitsnotiz (Urlaub bis 7.12.)", True),
        ("Réponse\u00a0automatique\u00a0: VPN", True),
        ("[Autoreply] VPN", True),
        ("[EXTERNAL] VPN tunnel down", False),
        ("Absence (of logs) on the firewall", False),
        ("Auto update broke the VPN", False),
    ],
)
def test_out_of_office_replies_are_known_by_the_subjects_mail_systems_give_them(
    subject: str, automatic: bool
) -> None:
    assert (automatic_reason(parse(mail(subject=subject))) is not None) is automatic


def test_a_dmarc_aggregate_report_is_automatic_by_its_mandated_subject() -> None:
    subject = "Report Domain: securecall.example Submitter: google.com Report-ID: 1732658400"
    assert automatic_reason(parse(mail(sender="noreply-dmarc@google.example", subject=subject)))


def test_a_bounce_forwarded_by_a_customer_as_an_attachment_is_their_question_not_a_bounce() -> None:
    bounce = (FIXTURES / "bounce_postfix_en.eml").read_bytes()
    forward = mail(subject="Fwd: Undelivered Mail Returned to Sender", body="See attached.\n")
    head, _, body = forward.partition(b"\r\n\r\n")
    data = (
        head.replace(
            b"Content-Type: text/plain; charset=utf-8",
            b'Content-Type: multipart/mixed; boundary="fwd"',
        )
        + b"\r\n\r\n--fwd\r\nContent-Type: text/plain\r\n\r\n"
        + body
        + b"\r\n--fwd\r\nContent-Type: message/rfc822\r\n\r\n"
        + bounce
        + b"\r\n--fwd--\r\n"
    )
    parsed = parse(data)
    assert parsed.report is None
    assert bounce_reason(parsed, "alice@example.com") is None
    assert automatic_reason(parsed) is None


def test_a_detector_that_fails_on_a_mail_costs_it_neither_its_parse_nor_its_report(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(_message: object) -> tuple[frozenset[bytes], frozenset[bytes]]:
        raise ValueError("detector bug")

    monkeypatch.setattr(dsn, "all_failures", broken)
    parsed = parse((FIXTURES / "bounce_gmail_en.eml").read_bytes())
    assert parsed.report == dsn.Report("bounce", "delivery status notification (RFC 3464)")
    assert "Address not found" in parsed.text
    assert parsed.defects == ()


def test_a_mail_that_is_no_report_and_does_not_say_bounce_is_not_searched_for_a_bounce_wording(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The MTAs' wordings only count beside a bounce's sender or subject: a mail with neither
    is not a bounce, and its text is not decoded again to look (every mail is read for it)."""
    read: list[object] = []
    decode = dsn._text

    def text(message: Any) -> str:
        read.append(message)
        return decode(message)

    monkeypatch.setattr(dsn, "_text", text)
    assert parse((FIXTURES / "plain_en.eml").read_bytes()).report is None
    assert read == []
    # an MTA's own bounce, known by its sender and its wording alone, still has its text read
    bounce = parse((FIXTURES / "bounce_fml_en.eml").read_bytes())
    assert bounce.report is not None
    assert bounce.report.kind == "bounce"
    assert len(read) == 1
