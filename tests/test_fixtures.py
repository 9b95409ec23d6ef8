"""The .eml corpus: every mail is parsed right, and stored right by the running gateway."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import pytest
from sqlalchemy import select

from gateway.storage.models import AttachmentRow, Message, StoredMail
from parsers.automatic import automatic_reason, bounce_reason
from parsers.language import detect_language
from parsers.mail import parse
from parsers.replies import latest_reply
from parsers.signals import is_reply
from tests.conftest import FIXTURES
from tests.support.harness import Gateway


def _expectations() -> dict[str, dict[str, Any]]:
    """expected.json and every expected.<topic>.json beside it: one file per group of fixtures."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(FIXTURES.glob("expected*.json")):
        for name, expected in json.loads(path.read_text()).items():
            assert name not in found, f"{name} has expectations in two files"
            found[name] = expected
    return found


EXPECTED = _expectations()
NAMES = sorted(EXPECTED)


def test_the_corpus_covers_what_intake_must_survive() -> None:
    on_disk = sorted(p.name for p in FIXTURES.glob("*.eml"))
    assert on_disk == NAMES
    assert len(NAMES) >= 30


@pytest.mark.parametrize("name", NAMES)
def test_a_fixture_parses_to_its_sender_subject_text_and_attachments(name: str) -> None:
    expected = EXPECTED[name]
    mail = parse((FIXTURES / name).read_bytes())
    assert mail.from_addr == expected["from"]
    assert mail.subject == expected["subject"]
    assert mail.message_id == expected["message_id"]
    for phrase in expected.get("text_contains", []):
        assert phrase in mail.text
    for phrase in expected.get("text_excludes", []):
        assert phrase not in mail.text
    reply = latest_reply(mail.text)
    for phrase in expected.get("reply_contains", []):
        assert phrase in reply
    for phrase in expected.get("reply_excludes", []):
        assert phrase not in reply
    assert detect_language(f"{mail.subject}\n{reply}") == expected["language"]
    is_automatic = automatic_reason(mail) is not None or bounce_reason(mail, None) is not None
    assert is_automatic == expected["automatic"]
    kept = [(a.filename, a.content_type, a.size, a.sha256) for a in mail.attachments]
    assert_attachments(kept, expected, name)


def test_every_fixture_sent_over_smtp_is_stored_and_none_is_quarantined(gateway: Gateway) -> None:
    for name in NAMES:
        expected = EXPECTED[name]
        data = (FIXTURES / name).read_bytes()
        reply = gateway.send(data, mail_from=expected["from"])
        assert reply.code == 250, (name, reply)
        stored_id = int(re.search(r"stored as (\d+)", reply.text).group(1))
        with gateway.runtime.sessions.begin() as session:
            stored = session.get_one(StoredMail, stored_id)
            assert stored.data == on_the_wire(data), name  # the raw mail, byte for byte
            assert stored.status != "quarantined", (name, stored.reason)
            if expected["automatic"]:
                assert stored.status in ("review", "bounce"), name
                continue
            assert stored.status == "accepted", (name, stored.reason)
            message = session.scalars(select(Message).where(Message.raw_mail_id == stored_id)).one()
            assert message.author_address == expected["from"], name
            assert message.subject == expected["subject"], name
            for phrase in expected.get("text_contains", []):
                assert phrase in message.text, (name, phrase)
            if is_reply(parse(data)):  # a new mail keeps its whole text (a forward is content)
                for phrase in expected.get("reply_excludes", []):
                    assert phrase not in message.reply_text, (name, phrase)
            else:
                assert message.reply_text == message.text, name
            rows = session.scalars(
                select(AttachmentRow).where(AttachmentRow.message_id == message.id)
            ).all()
            kept = [(r.filename, r.content_type, r.size, r.sha256) for r in rows]
            assert all(hashlib.sha256(r.data).hexdigest() == r.sha256 for r in rows), name
            assert_attachments(kept, expected, name)


def on_the_wire(data: bytes) -> bytes:
    """What smtplib carries for bytes: the same bytes, ended by CRLF before the final dot."""
    return data if data.endswith(b"\r\n") else data + b"\r\n"


def assert_attachments(
    kept: list[tuple[str, str, int, str]], expected: dict[str, Any], name: str
) -> None:
    """Same attachments in the same order; a field the corpus leaves out is not compared."""
    wanted = expected.get("attachments", [])
    assert len(kept) == len(wanted), (name, kept)
    for (filename, content_type, size, sha256), want in zip(kept, wanted, strict=True):
        assert content_type == want["content_type"], name
        for field, value in (("filename", filename), ("size", size), ("sha256", sha256)):
            if field in want:
                assert value == want[field], (name, field, value)
