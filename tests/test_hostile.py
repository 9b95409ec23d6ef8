"""Hostile and broken mail (R6.3, R6.5): limits, winmail.dat, HTML, header injection, quarantine."""

from __future__ import annotations

import base64
import hashlib
import json
from email.header import Header
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from cli.app import app
from gateway.storage.models import AttachmentRow, Message, ServiceRequest, StoredMail
from parsers.headers import MAX_FIELD_BYTES
from parsers.mail import parse
from parsers.parts import MAX_TNEF_FILES
from tests.support import tnef
from tests.support.harness import Gateway, failing, mail
from tests.support.sink import Sink
from tests.support.tnef import winmail

ALICE = "alice@example.com"
SOC_QUEUE = "soc-queue@securecall.example"


def with_attachment(
    name: str, content_type: str, data: bytes, body: str = "See attached."
) -> bytes:
    head = (
        mail(subject="with a file")
        .split(b"\r\n\r\n", 1)[0]
        .replace(
            b"Content-Type: text/plain; charset=utf-8",
            b'Content-Type: multipart/mixed; boundary="b"',
        )
    )
    encoded = base64.encodebytes(data).replace(b"\n", b"\r\n")
    return (
        head
        + (
            f"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n{body}\r\n--b\r\n"
            f'Content-Type: {content_type}; name="{name}"\r\nContent-Disposition: attachment; '
            f'filename="{name}"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
        ).encode()
        + encoded
        + b"--b--\r\n"
    )


def test_the_files_in_a_winmail_dat_are_kept_byte_for_byte(gateway: Gateway, sink: Sink) -> None:
    files = [
        ("firewall.log", b"denied tcp 10.0.0.1 -> 10.0.0.2\n" * 50),
        ("config.bin", bytes(range(256)) * 4),
    ]
    data = with_attachment("winmail.dat", "application/ms-tnef", winmail(files))
    assert gateway.send(data).code == 250
    sink.wait_to(ALICE)
    with gateway.runtime.sessions.begin() as session:
        kept = session.execute(select(AttachmentRow.filename, AttachmentRow.sha256)).all()
    assert [name for name, _ in kept] == [
        "winmail.dat",
        "winmail.dat/firewall.log",
        "winmail.dat/config.bin",
    ]
    assert [digest for _, digest in kept][1:] == [hashlib.sha256(d).hexdigest() for _, d in files]


def test_a_winmail_dat_with_too_many_files_is_read_only_up_to_the_limit() -> None:
    many = [(f"file{n}.txt", b"x") for n in range(MAX_TNEF_FILES + 6)]
    parsed = parse(with_attachment("winmail.dat", "application/ms-tnef", winmail(many)))
    assert len(parsed.attachments) == 1 + MAX_TNEF_FILES
    assert any(f"only {MAX_TNEF_FILES} taken" in d for d in parsed.defects)


def test_a_broken_winmail_dat_is_kept_whole_as_a_defect() -> None:
    # a file's name before any file began: the stream is not well-formed
    broken = winmail([])[:6] + tnef._object(
        tnef.LVL_ATTACHMENT, tnef.ATT_TITLE, tnef.TYPE_STRING, b"orphan.txt\0" + b"x" * 40
    )
    parsed = parse(with_attachment("winmail.dat", "application/ms-tnef", broken))
    assert [a.filename for a in parsed.attachments] == ["winmail.dat"]
    assert any("not readable as TNEF" in d for d in parsed.defects)


def test_customer_html_is_sanitised_before_anyone_sees_it(gateway: Gateway, sink: Sink) -> None:
    html = (
        "<html><body><p>Our <b>VPN</b> fails.</p><script>alert('pwned')</script>"
        "<img src=x onerror=\"alert('img')\"><a href=\"javascript:alert('link')\">log</a>"
        '<iframe src="https://evil.example/"></iframe></body></html>'
    )
    data = (
        mail(subject="html only")
        .replace(
            b"Content-Type: text/plain; charset=utf-8", b"Content-Type: text/html; charset=utf-8"
        )
        .split(b"\r\n\r\n", 1)[0]
        + b"\r\n\r\n"
        + html.encode()
    )
    assert gateway.send(data).code == 250
    notification = sink.wait_to(SOC_QUEUE)[0]
    with gateway.runtime.sessions.begin() as session:
        stored = session.scalars(select(Message)).one()
    for hostile in ("<script", "alert(", "onerror", "javascript:", "<iframe"):
        assert hostile not in (stored.html or "")
        assert hostile not in notification.text
        assert hostile not in notification.data.decode("utf-8", "replace")
    assert "<b>VPN</b>" in stored.html
    assert "Our VPN fails." in notification.text


def test_line_breaks_in_a_subject_or_name_never_make_an_extra_header(
    gateway: Gateway, sink: Sink
) -> None:
    subject = Header("PRIORITY 1\r\nBcc: victim@evil.example\r\nX-Evil: 1", "utf-8").encode()
    name = Header("Alice\r\nBcc: other@evil.example", "utf-8").encode()
    data = (
        f"From: {name} <alice@example.com>\r\nTo: soc@securecall.example\r\n"
        f"Subject: {subject}\r\nMessage-ID: <inject@example.com>\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\nProduction is down.\r\n"
    ).encode()
    assert gateway.send(data).code == 250
    sent = [*sink.wait_to(ALICE), *sink.wait_to(SOC_QUEUE, 2)]  # ack, notification, P1 alert
    assert len(sent) == 3
    for received in sent:
        names = {key.lower() for key in received.message}
        assert "bcc" not in names
        assert "x-evil" not in names
        assert received.rcpt_tos in ((ALICE,), (SOC_QUEUE,))
        head = received.data.split(b"\r\n\r\n", 1)[0]
        assert b"\r\nBcc:" not in head
        assert b"\r\nX-Evil:" not in head


def test_line_breaks_in_a_file_name_never_make_an_extra_header(
    gateway: Gateway, sink: Sink
) -> None:
    """The customer's files go out with the SOC's copy; their names are header parameters."""
    data = with_attachment("x.txt", "text/plain", b"log line\n").replace(
        b'filename="x.txt"', b"filename*=utf-8''evil%0D%0ABcc%3A%20x%40evil.example%0D%0A.txt"
    )
    assert gateway.send(data).code == 250
    (copy,) = sink.wait_to(SOC_QUEUE)
    assert "bcc" not in {key.lower() for key in copy.message}
    (part,) = copy.message.iter_attachments()
    assert part.get_content() == "log line\n"
    assert part.get_filename() == "evil_Bcc: x@evil.example_.txt"  # one line
    assert [key.lower() for key in part] == [
        "content-type",
        "mime-version",
        "content-transfer-encoding",
        "content-disposition",
    ]
    assert b"\r\nBcc:" not in copy.data


def test_a_script_in_the_title_is_escaped_in_the_acknowledgements_html(
    gateway: Gateway, sink: Sink
) -> None:
    assert gateway.send(mail(subject="<script>alert(1)</script> VPN")).code == 250
    (ack,) = sink.wait_to(ALICE)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in ack.html
    assert "<script>" not in ack.html


def test_a_header_block_over_the_limit_is_quarantined_and_never_lost(
    gateway: Gateway, sink: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    padding = b"".join(b"X-Padding-%d: " % n + b"y" * 900 + b"\r\n" for n in range(300))
    data = padding + mail()
    assert gateway.send(data).code == 250  # accepted: kept whole, in quarantine
    assert sink.settle() == []
    monkeypatch.setenv("GATEWAY_DATABASE_URL", gateway.settings.database)
    monkeypatch.setenv("GATEWAY_VAR_DIR", str(gateway.settings.var_dir))
    runner = CliRunner()
    (listed,) = json.loads(runner.invoke(app, ["quarantine", "list", "--json"]).output)
    assert listed["reason"].startswith("unparsable: header block over")
    shown = json.loads(
        runner.invoke(app, ["quarantine", "show", str(listed["id"]), "--json"]).output
    )
    assert shown["headers"].startswith("X-Padding-0: yyy")
    assert shown["size"] == len(data)
    with gateway.runtime.sessions.begin() as session:
        assert session.get_one(StoredMail, listed["id"]).data == data


def test_a_quarantined_mail_is_processed_by_retry_once_the_fault_is_gone(
    gateway: Gateway, sink: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = gateway.runtime.sessions.kw["bind"]
    with failing(engine, "INSERT INTO service_requests", RuntimeError("a bug, since fixed")):
        assert gateway.send(mail(message_id="<later@example.com>")).code == 250
    monkeypatch.setenv("GATEWAY_DATABASE_URL", gateway.settings.database)
    monkeypatch.setenv("GATEWAY_VAR_DIR", str(gateway.settings.var_dir))
    runner = CliRunner()
    (listed,) = json.loads(runner.invoke(app, ["quarantine", "list", "--json"]).output)
    result = runner.invoke(app, ["quarantine", "retry", str(listed["id"]), "--json"])
    assert result.exit_code == 0, result.output
    retried: dict[str, Any] = json.loads(result.output)
    assert retried["outcome"] == "open"
    assert retried["sr_id"].startswith("SR-")
    with gateway.runtime.sessions.begin() as session:
        statuses = list(session.scalars(select(StoredMail.status)))
        assert statuses == ["accepted"]  # the quarantined copy made way for the processed one
        assert session.scalars(select(ServiceRequest.public_id)).one() == retried["sr_id"]
    again = runner.invoke(app, ["quarantine", "retry", str(listed["id"])])
    assert again.exit_code == 2
    assert "no quarantined mail" in again.output


def test_a_huge_field_of_unfinished_encoded_words_is_cut_not_decoded_for_minutes() -> None:
    """The standard library's RFC 2047 decoder is quadratic on such a field: 240 kB took minutes.
    The field is cut for parsing; the defect says so; a long References field stays whole."""
    references = " ".join(f"<thread-{n}@example.com>" for n in range(600))  # about 15 kB
    raw = (
        "From: alice@example.com\r\nTo: soc@securecall.example\r\n"
        f"Subject: {'=?a?q?x ' * 30_000}\r\nReferences: {references}\r\n\r\nbody\r\n"
    ).encode()
    parsed = parse(raw)
    assert len(parsed.subject) <= MAX_FIELD_BYTES
    assert any("cut" in d and "240009" in d for d in parsed.defects), parsed.defects
    assert len(parsed.references) == 600
    assert parsed.references[-1] == "<thread-599@example.com>"
    assert parsed.text == "body"
