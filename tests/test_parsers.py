"""The pure parts: signals of a mail, reply stripping, parsing edge cases, identifiers."""

from __future__ import annotations

import pytest

from gateway.core.ids import is_our_message_id, new_sr_id, outgoing_message_id
from parsers.automatic import automatic_reason, bounce_reason
from parsers.language import detect_language
from parsers.mail import parse
from parsers.replies import latest_reply
from parsers.signals import (
    asks_for_rca,
    request_type,
    requested_priority,
    sr_tokens,
    title,
)
from tests.support.harness import mail


@pytest.mark.parametrize(
    ("subject", "tokens"),
    [
        ("Re: [SR-7KQM-29XD] VPN down", ("SR-7KQM-29XD",)),
        ("AW: sr-7kqm-29xd VPN", ("SR-7KQM-29XD",)),
        ("SR7KQM29XD and [SR-AAAA-BBBB]", ("SR-7KQM-29XD", "SR-AAAA-BBBB")),
        ("SR-7KQM-29XI has an I, which is not Crockford", ()),
        ("ISR-7KQM-29XD inside a word", ()),
        ("SR-7KQM29XD, one hyphen after SR", ("SR-7KQM-29XD",)),
        ("More info SR-7KQM-29XD_update", ("SR-7KQM-29XD",)),
        # a Juniper serial is no SR ID: "SR" then four, a hyphen, four
        ("Crash on SRX300-0002 since Monday", ()),
    ],
)
def test_sr_tokens_are_found_and_normalised(subject: str, tokens: tuple[str, ...]) -> None:
    assert sr_tokens(subject) == tokens


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Re: AW: WG: [SR-7KQM-29XD] VPN down", "VPN down"),
        ("RE : TR: Problème de licence", "Problème de licence"),
        ("Fwd: [SR-7KQM-29XD]", "(no subject)"),
        ("Issue on SRX300-0002", "Issue on SRX300-0002"),
        ("", "(no subject)"),
    ],
)
def test_the_title_drops_prefixes_and_tokens(subject: str, expected: str) -> None:
    assert title(subject) == expected


@pytest.mark.parametrize(
    ("subject", "text", "priority"),
    [
        ("PRIORITY 1 – cluster down", "", 1),
        ("P2: backup link flapping", "", 2),
        ("VPN", "Priorität: 1\nBitte sofort anrufen.", 1),
        ("Licence", "Priorité 4 merci", 4),
        ("Firewall", "Our production is down since 8:00.", 1),
        ("Produktion steht", "", 1),
        ("Question about logging", "Could you explain the log format?", None),
        # R1.4: an outage in the words customers use, in each language
        ("Firewall", "our firewall is down and no traffic passes since 10:00.", 1),
        ("Network", "our production network is down since the upgrade.", 1),
        ("Help", "everything is down, complete loss of service", 1),
        ("Firewall", "Guten Tag,\ndie Firewall ist ausgefallen, es geht nichts mehr.", 1),
        ("Pare-feu", "Bonjour,\nle pare-feu est en panne, plus rien ne passe.", 1),
        # a form's priority does not hide the outage below it
        ("Ticket", "Priority: 3\n\nHello, our production is down, nothing works.", 1),
        # taken back in its clause
        ("Licence", "This is not a P1, just a question about the licence.", None),
        ("Logging", "Not an outage, only a question.", None),
        # a tunnel or a link down is for the SOC to judge, no outage by its words alone
        ("VPN tunnel to Frankfurt is down", "It dropped this morning.", None),
        ("Backup", "the backup link is down since 8:00", None),
    ],
)
def test_the_requested_priority_is_read_from_subject_and_first_lines(
    subject: str, text: str, priority: int | None
) -> None:
    found = requested_priority(subject, text)
    assert (found.priority if found else None) == priority


def test_a_priority_in_the_quoted_history_far_below_is_not_a_request() -> None:
    text = "Thanks.\n" + "\n" * 30 + "> Priority 1 cluster down"
    assert requested_priority("Re: something", text) is None


@pytest.mark.parametrize(
    ("subject", "kind"),
    [
        ("SecureHands request: config review", "securehands"),
        ("Secure Hands session for upgrade", "securehands"),
        ("Technical Baseline Assessment Q3", "technical_baseline_assessment"),
        ("Security Assessment Scan for 25 IPs", "vulnerability_assessment"),
        ("vulnerability scan request", "vulnerability_assessment"),
        ("VPN down", "incident"),
    ],
)
def test_the_subject_names_the_request_type(subject: str, kind: str) -> None:
    assert request_type(subject) == kind


@pytest.mark.parametrize(
    ("text", "asked"),
    [
        ("Please provide a root cause analysis.", True),
        ("We need an RCA for yesterday.", True),
        ("Bitte eine Ursachenanalyse erstellen.", True),
        ("Merci de fournir une analyse des causes profondes.", True),
        ("The RCAP protocol is unrelated.", False),
    ],
)
def test_requests_for_root_cause_analysis_are_recognised(text: str, asked: bool) -> None:
    assert asks_for_rca("Incident", text) is asked


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Hello, our firewall is not working since this morning. Please help.", "en"),
        ("Guten Tag, die Firewall ist seit heute nicht erreichbar. Bitte um Hilfe.", "de"),
        ("Bonjour, le pare-feu ne fonctionne pas depuis ce matin. Merci de nous aider.", "fr"),
        ("ok", None),
        ("", None),
        # the mail's language, not its signature's English disclaimer
        (
            "Guten Tag,\nunser VPN funktioniert nicht mehr seit dem Update. Können Sie bitte "
            "helfen?\n\nGruß\nR\n-- \nR Example | IT Operations | US Corp\nThis message is "
            "confidential and may be privileged. If you are not the intended recipient, you have "
            "to delete it.",
            "de",
        ),
        (
            "Bonjour,\nnotre VPN ne fonctionne plus. Pouvez-vous nous aider ?\nCordialement\n"
            "--\nThis e-mail and any attachments are confidential and may be privileged. If you "
            "are not the intended recipient please delete it and notify the sender.",
            "fr",
        ),
    ],
)
def test_the_language_of_a_mail_is_detected(text: str, language: str | None) -> None:
    assert detect_language(text) == language


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"Auto-Submitted": "auto-replied"}, "Auto-Submitted: auto-replied"),
        ({"Auto-Submitted": "no"}, None),
        ({"Precedence": "junk"}, "Precedence: junk"),
        ({"List-Unsubscribe": "<mailto:x@y>"}, "mailing list (list-unsubscribe)"),
        ({"X-Autoreply": "yes"}, "auto-reply (x-autoreply)"),
        ({"X-Auto-Response-Suppress": "OOF"}, "X-Auto-Response-Suppress: oof"),
        ({}, None),
    ],
)
def test_automatic_mail_is_recognised_by_its_headers(
    headers: dict[str, str], reason: str | None
) -> None:
    assert automatic_reason(parse(mail(headers=headers))) == reason


def test_bounces_are_recognised_by_envelope_sender_and_from() -> None:
    plain = parse(mail())
    assert bounce_reason(plain, "") == "null envelope sender"
    assert bounce_reason(plain, "alice@example.com") is None
    assert bounce_reason(parse(mail(sender="MAILER-DAEMON@mx.example.com")), None) is not None


@pytest.mark.parametrize(
    ("text", "kept", "dropped"),
    [
        (
            "Thanks, that fixed it.\n\nOn Sat, 21 Nov 2026 at 10:02, SOC <soc@x> wrote:\n> old",
            "Thanks, that fixed it.",
            "old",
        ),
        ("Danke.\n\nAm 21.11.2026 um 10:02 schrieb SOC <soc@x>:\n> alt", "Danke.", "alt"),
        ("Merci.\n\nLe 21 nov. 2026 à 10:02, SOC <soc@x> a\nécrit :\n> ancien", "Merci.", "ancien"),
        ("Steps:\n- restart\n- check logs\nDone.", "- check logs\nDone.", None),
        (
            "Bien reçu.\n\nDe\xa0: SOC\nEnvoyé\xa0: samedi\nÀ\xa0: moi\nObjet\xa0: x\n\nancien",
            "Bien reçu.",
            "ancien",
        ),
    ],
)
def test_the_latest_reply_drops_quoted_history(text: str, kept: str, dropped: str | None) -> None:
    reply = latest_reply(text)
    assert kept in reply
    if dropped:
        assert dropped not in reply


def test_parse_never_raises_on_garbage() -> None:
    for data in (b"", b"\x00\xff\xfe", b"Subject: x", b"From: <>\r\n\r\n" + b"A" * 10_000):
        parsed = parse(data)
        assert parsed.from_addr == ""
        assert isinstance(parsed.text, str)


def _nested(levels: int) -> bytes:
    head = b"From: alice@example.com\r\nSubject: nest\r\nMIME-Version: 1.0\r\n"
    body = b"".join(
        f'Content-Type: multipart/mixed; boundary="b{n}"\r\n\r\n--b{n}\r\n'.encode()
        for n in range(levels)
    )
    return head + body + b"Content-Type: text/plain\r\n\r\ndeep\r\n"


def test_deeply_nested_mime_is_cut_off_as_a_defect_not_an_error() -> None:
    parsed = parse(_nested(60))
    assert parsed.text == ""  # the part below the depth limit is not read
    assert any("depth 20" in d for d in parsed.defects)
    hostile = parse(_nested(3000))  # beyond what the email package can recurse into
    assert hostile.defects[0].startswith("unparsable: MailParserRecursionError")
    assert hostile.from_addr == ""


def test_a_latin1_label_on_windows_1252_bytes_reads_as_windows_1252() -> None:
    data = (
        b"From: alice@example.com\r\nSubject: quotes\r\nContent-Type: text/plain; "
        b"charset=iso-8859-1\r\n\r\n\x93quoted\x94 costs \x80 5\r\n"
    )
    assert parse(data).text == "\u201cquoted\u201d costs \u20ac 5"


def test_the_content_fingerprint_ignores_trace_headers() -> None:
    data = mail(message_id=None)
    relayed = b"Received: from a by b\r\nDelivered-To: soc@x\r\nReturn-Path: <a@b>\r\n" + data
    assert parse(data).fingerprint == parse(relayed).fingerprint
    assert parse(data).fingerprint != parse(data.replace(b"Frankfurt", b"Hamburg")).fingerprint


def test_sr_ids_are_random_readable_and_distinct() -> None:
    ids = {new_sr_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert all(len(i) == 12 and i.startswith("SR-") and i[7] == "-" for i in ids)
    assert not any(c in "ILOU" for i in ids for c in i[3:])


def test_outgoing_message_ids_verify_with_their_key_and_survive_rotation() -> None:
    old = {"k1": b"old-key"}
    message_id = outgoing_message_id("SR-7KQM-29XD", "securecall.example", old)
    assert is_our_message_id(message_id, old)
    rotated = {"k2": b"new-key", "k1": b"old-key"}  # new key signs, the old one still verifies
    assert is_our_message_id(message_id, rotated)
    assert not is_our_message_id(message_id, {"k1": b"another-key"})
    forged = message_id.replace(message_id[1:4], "sr-x")
    assert not is_our_message_id(forged, old)
    assert not is_our_message_id("<random@securecall.example>", old)


def test_the_text_of_an_html_only_mail_leaves_out_its_title_and_scripts() -> None:
    raw = (
        b"From: alice@example.com\r\nTo: soc@securecall.example\r\nSubject: s\r\n"
        b"Content-Type: text/html; charset=utf-8\r\n\r\n"
        b"<html><head><title>URGENT escalate</title></head>"
        b"<body><p>Hello</p><script>document.write('x')</script></body></html>\r\n"
    )
    parsed = parse(raw)
    assert parsed.text == "Hello"
    assert parsed.html is not None
    assert "<script" not in parsed.html
