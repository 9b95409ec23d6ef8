"""Composing: the mail put together as text (compose_bytes) is, byte for byte, the mail built
with email.message and flattened (as_bytes(compose(…))), for every shape of mail the gateway
sends; and what it sends reads back as the mail it meant."""

from __future__ import annotations

from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest

from gateway.core.settings import Settings
from gateway.outbound.sending import Claimed, File
from workers import composer, quoted_printable
from workers.composer import as_bytes, compose, compose_bytes
from workers.render import Rendered
from workers.transport import PermanentFailure

LIST_FIELDS = {
    "List-Id": "<fortigate-600e.sus.securecall.example>",
    "List-Unsubscribe": "<https://gw.example/u/tok-AbC_1>, "
    "<mailto:sus@securecall.example?subject=unsubscribe%20tok-AbC_1>",
    "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    "Precedence": "bulk",
}
LONG = "Firewall verliert Verbindung nach dem Update auf FortiOS 7.4.5 und startet danach neu"
TEXT_DE = "Guten Tag Jürgen Müller,\n\nvielen Dank für Ihre Nachricht. " + "Grüße " * 40 + "\n"
TEXT_FR = "Bonjour Zoë,\n\nVotre demande a été reçue.\r\nÀ bientôt\n.\nFrom here\n"
HTML = "<html><body><p>Sehr geehrte Frau Müller, " + "ä" * 120 + "</p>\n</body></html>"


def claimed(**fields: Any) -> Claimed:
    values: dict[str, Any] = {
        "id": 7,
        "template": "request_opened",
        "audience": "customer",
        "language": "de",
        "recipient": "juergen@example.de",
        "context": {},
        "message_id": "<sr.123.1@securecall.example>",
        "in_reply_to": "<orig@example.de>",
        "references": "<a@example.de> <orig@example.de>",
        "auto_submitted": "auto-replied",
        "attempts": 0,
    }
    return Claimed(**(values | fields))


CASES = {
    "acknowledgement in German, text and HTML": (
        claimed(),
        Rendered(subject=f"[SR-2026-000123] Eingegangen: {LONG} – Grüße", text=TEXT_DE, html=HTML),
    ),
    "notice in French, text only": (
        claimed(language="fr", in_reply_to=None, references=""),
        Rendered(subject="[SR-1] Demande reçue : « pare-feu »", text=TEXT_FR, html=None),
    ),
    "SOC copy, ASCII, long subject": (
        claimed(audience="soc", auto_submitted=""),
        Rendered(subject=f"[SR-2] {LONG} {LONG}", text="x" * 300 + "\n", html=None),
    ),
    "bulletin with its list fields": (
        claimed(template="sus_bulletin", headers=LIST_FIELDS, auto_submitted="auto-generated"),
        Rendered(subject="[SUS] FortiGate 600E patch (critical)", text="Dear Ann,\n", html=HTML),
    ),
    "empty HTML and a subject with spaces at its ends": (
        claimed(),
        Rendered(subject="  [SR-3]   two  spaces ", text="", html=""),
    ),
}


@pytest.fixture
def fixed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The two things that differ between two compositions: the boundary and the date."""
    monkeypatch.setattr(composer, "_boundary", lambda: "=_0123456789abcdef01234567")
    monkeypatch.setattr(composer, "formatdate", lambda usegmt: "Wed, 02 Dec 2026 18:00:00 GMT")


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("gateway_name", ["SecureCall SOC", "SecureCall Sécurité"])
def test_the_mail_put_together_as_text_is_the_mail_built_and_flattened(
    name: str, gateway_name: str, tmp_path: Path, fixed: None
) -> None:
    settings = Settings(var_dir=tmp_path, secret_key="k", gateway_name=gateway_name)
    delivery, rendered = CASES[name]
    assert compose_bytes(delivery, rendered, settings) == as_bytes(
        compose(delivery, rendered, settings)
    )


def test_the_mails_of_one_bulletin_encoded_from_kept_lines_are_the_mails_built(
    tmp_path: Path, fixed: None
) -> None:
    # Given the lines of a bulletin's text kept from its first mail, awkward lines among them
    settings = Settings(var_dir=tmp_path, secret_key="k")
    delivery, _ = CASES["bulletin with its list fields"]
    body = "Dear {name},\n\n" + "Grüße " * 30 + " \n\ttab =3D\n" + "y" * 75 + "\n.\nFrom x\n"
    quoted_printable._QP_LINES.clear()
    for name in ("Ann", "Ann", "Zoë Ümlaut", "Bo "):
        # When each subscriber's mail is composed
        rendered = Rendered(subject="[SUS] patch", text=body.format(name=name), html=HTML)
        # Then each is the mail built with email.message, its personal line encoded anew
        assert compose_bytes(delivery, rendered, settings) == as_bytes(
            compose(delivery, rendered, settings)
        )
    assert any(line.startswith(b"Dear Zo") for line in quoted_printable._QP_LINES)


def test_a_mail_put_together_as_text_reads_back_as_sent(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path, secret_key="k")
    delivery, rendered = CASES["acknowledgement in German, text and HTML"]
    data = compose_bytes(delivery, rendered, settings)
    assert b"\n" not in data.replace(b"\r\n", b"")  # every line ends in CRLF
    read = message_from_bytes(data, policy=policy.default)
    assert read["Subject"] == rendered.subject
    assert read["References"] == "<a@example.de> <orig@example.de>"
    plain, html = (part.get_content() for part in read.iter_parts())
    assert plain.replace("\r\n", "\n") == TEXT_DE
    assert html.replace("\r\n", "\n") == HTML


def test_a_senders_message_id_too_long_for_a_line_is_left_out_of_the_threading_fields(
    tmp_path: Path,
) -> None:
    settings = Settings(var_dir=tmp_path, secret_key="k")
    huge = f"<{'x' * 3000}@example.de>"
    delivery = claimed(in_reply_to=huge, references=f"<a@example.de> {huge}")
    data = compose_bytes(delivery, Rendered("s", "t\n", None), settings)
    assert max(len(line) for line in data.split(b"\r\n")) <= 998  # RFC 5322 §2.1.1
    read = message_from_bytes(data, policy=policy.default)
    assert read["In-Reply-To"] is None
    assert read["References"] == "<a@example.de>"


def test_a_mail_with_files_is_built_with_email_message(tmp_path: Path, fixed: None) -> None:
    settings = Settings(var_dir=tmp_path, secret_key="k")
    delivery, rendered = CASES["notice in French, text only"]
    files = [File("rapport.pdf", "application/pdf", b"%PDF-1.7\r\n")]
    assert compose_bytes(delivery, rendered, settings, files) == as_bytes(
        compose(delivery, rendered, settings, files)
    )


@pytest.mark.parametrize(
    "fields",
    [
        {"headers": {"List-Id": "<x>\r\nBcc: victim@example.org"}},
        {"in_reply_to": "<a@b>\r\nBcc: victim@example.org"},
        {"recipient": "a@b.example, victim@example.org"},
    ],
)
def test_a_field_that_would_add_a_header_fails_the_mail(
    fields: dict[str, Any], tmp_path: Path
) -> None:
    settings = Settings(var_dir=tmp_path, secret_key="k")
    with pytest.raises(PermanentFailure):
        compose_bytes(claimed(**fields), Rendered("s", "t\n", None), settings)
