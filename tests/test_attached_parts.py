"""Attached containers (R1.7): a forwarded message/rfc822 or a multipart sent as an attachment is
kept as the bytes of its body as they were in the mail, with the sender's line ends."""

from __future__ import annotations

import base64
import hashlib
import os
from typing import Any

import pytest
from sqlalchemy import select

from gateway.outbound import sending
from gateway.requests import listings as request_listings
from gateway.storage.models.mail import AttachmentRow
from parsers.mail import parse
from tests.support.harness import INTAKE, Gateway, eventually, sr_id_of
from tests.support.sink import Sink

ALICE = "alice@example.com"
MB = 1024 * 1024
FORWARDED = (
    b"From: Bob <bob@example.net>\r\nTo: alice@example.com\r\nSubject: tunnel down\r\n\r\n"
    b"The tunnel to Frankfurt dropped at 09:12.\r\nBob\r\n"
)
BUNDLE = (
    b"This is a bundle.\r\n--inner\r\nContent-Type: text/plain\r\n\r\npart one\r\n"
    b"--inner\r\nContent-Type: text/plain\r\n\r\npart two\r\n--inner--\r\n"
)


def sent(parts: list[bytes], nl: bytes = b"\r\n") -> bytes:
    """A mail from Alice with a text and `parts` (each its header, an empty line, its body)."""
    head = (
        f"From: Alice <{ALICE}>\nTo: SOC <{INTAKE}>\nSubject: Tunnel down, see the files\n"
        "Message-ID: <attached@example.com>\nDate: Sat, 21 Nov 2026 10:00:00 +0100\n"
        'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="outer"\n\n'
        "--outer\nContent-Type: text/plain; charset=utf-8\n\nHello SOC, files attached.\n--outer\n"
    )
    body = b"".join(p + nl + b"--outer" + nl for p in parts)
    return head.replace("\n", nl.decode()).encode() + body[: -len(nl)] + b"--" + nl


def forwarded(body: bytes, nl: bytes = b"\r\n", name: str = "fw.eml") -> bytes:
    head = f'Content-Type: message/rfc822\nContent-Disposition: attachment; filename="{name}"\n\n'
    return head.replace("\n", nl.decode()).encode() + body


def bundle(body: bytes, nl: bytes = b"\r\n") -> bytes:
    head = (
        'Content-Type: multipart/mixed; boundary="inner"\n'
        'Content-Disposition: attachment; filename="bundle.mime"\n\n'
    )
    return head.replace("\n", nl.decode()).encode() + body


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_an_attached_message_is_kept_with_its_crlf_line_ends() -> None:
    # Given a mail with a forwarded message attached as fw.eml, its lines ending in CRLF
    raw = sent([forwarded(FORWARDED)])
    # When it is parsed
    parsed = parse(raw)
    # Then the file is the forwarded message byte for byte
    (fw,) = parsed.attachments
    assert (fw.filename, fw.content_type) == ("fw.eml", "message/rfc822")
    assert (fw.data, fw.size, fw.sha256) == (FORWARDED, len(FORWARDED), digest(FORWARDED))
    assert parsed.text == "Hello SOC, files attached."
    assert parsed.defects == ()


def test_a_multipart_sent_as_an_attachment_is_kept_whole_with_every_subpart() -> None:
    # Given a mail with a multipart/mixed attached as bundle.mime (a preamble, two subparts)
    raw = sent([bundle(BUNDLE)])
    # When it is parsed
    parsed = parse(raw)
    # Then the file is the whole body of that part, not its first subpart
    (kept,) = parsed.attachments
    assert (kept.filename, kept.content_type) == ("bundle.mime", "multipart/mixed")
    assert (kept.data, kept.size, kept.sha256) == (BUNDLE, len(BUNDLE), digest(BUNDLE))
    assert b"part two" in kept.data


def test_attached_containers_keep_lf_line_ends_too_and_leaf_files_beside_them_are_decoded() -> None:
    # Given a mail with LF line ends: a forwarded message, a bundle and a base64 file
    lf_forwarded, lf_bundle = FORWARDED.replace(b"\r\n", b"\n"), BUNDLE.replace(b"\r\n", b"\n")
    capture = os.urandom(300)
    leaf = (
        b"Content-Type: application/octet-stream\n"
        b'Content-Disposition: attachment; filename="c.pcap"\n'
        b"Content-Transfer-Encoding: base64\n\n" + base64.encodebytes(capture)
    )
    raw = sent([forwarded(lf_forwarded, b"\n"), bundle(lf_bundle, b"\n"), leaf], b"\n")
    # When it is parsed
    parsed = parse(raw)
    # Then each file is as sent: the containers with LF, the base64 file decoded
    assert [(a.filename, a.data) for a in parsed.attachments] == [
        ("fw.eml", lf_forwarded),
        ("bundle.mime", lf_bundle),
        ("c.pcap", capture),
    ]


def test_the_attachments_of_a_forwarded_message_stay_inside_it() -> None:
    # Given a forwarded message that has a file of its own
    inner = (
        b"From: bob@example.net\r\nSubject: log\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="bob"\r\n\r\n--bob\r\n'
        b"Content-Type: text/plain\r\n\r\nsee log\r\n--bob\r\nContent-Type: text/plain\r\n"
        b'Content-Disposition: attachment; filename="bob.log"\r\n\r\nline 1\r\n--bob--\r\n'
    )
    # When the mail is parsed
    parsed = parse(sent([forwarded(inner)]))
    # Then the SR keeps the forwarded message as one file, its own file within it
    assert [(a.filename, a.data) for a in parsed.attachments] == [("fw.eml", inner)]


def test_large_attached_containers_are_kept_in_place_byte_for_byte() -> None:
    # Given a large mail: a forwarded message of 2 MB and a bundle holding a 2 MB base64 file
    log = b"".join(b"line %d of the firewall log\r\n" % n for n in range(80_000))
    big_forwarded = b"From: bob@example.net\r\nSubject: log\r\n\r\n" + log
    encoded = base64.encodebytes(os.urandom(2 * MB)).replace(b"\n", b"\r\n")
    big_bundle = (
        b"--inner\r\nContent-Type: text/plain\r\n\r\npart one\r\n--inner\r\n"
        b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + encoded
        + b"--inner--"
    )
    raw = sent([forwarded(big_forwarded), bundle(big_bundle)])
    # When it is parsed
    parsed = parse(raw)
    # Then both files are their bodies as sent, read from the mail where they are
    assert [(a.filename, a.size, a.sha256) for a in parsed.attachments] == [
        ("fw.eml", len(big_forwarded), digest(big_forwarded)),
        ("bundle.mime", len(big_bundle), digest(big_bundle)),
    ]
    assert [a.content(raw) for a in parsed.attachments] == [big_forwarded, big_bundle]
    assert all(a.in_place and a.data == b"" for a in parsed.attachments)


def test_a_digests_message_is_kept_as_the_email_package_reads_it_and_that_is_a_defect() -> None:
    # Given a digest whose message has no header lines of its own (RFC 2046 §5.1.5)
    digest_part = (
        b'Content-Type: multipart/digest; boundary="d"\r\n'
        b"Content-Disposition: inline\r\n\r\n--d\r\n\r\n" + FORWARDED + b"\r\n--d--\r\n"
    )
    # When the mail is parsed
    parsed = parse(sent([digest_part]))
    # Then the message is kept as read again, LF-ended, and the mail says it is not as sent
    (kept,) = parsed.attachments
    assert kept.data == FORWARDED.replace(b"\r\n", b"\n")
    assert parsed.defects == (
        f"{kept.filename}: not found in the mail as sent; kept as the email package writes it",
    )


def test_attached_containers_sent_over_smtp_are_on_the_sr_byte_for_byte(
    gateway: Gateway, sink: Sink
) -> None:
    # Given a mail with a forwarded message and a bundle attached, CRLF-ended
    raw = sent([forwarded(FORWARDED), bundle(BUNDLE)])
    # When Alice sends it to the gateway
    assert gateway.send(raw, mail_from=ALICE).code == 250
    sr_id = sr_id_of(eventually(lambda: sink.to(ALICE))[0])
    # Then the SR lists both files with the size and sha256 of the bytes sent
    with gateway.runtime.sessions.begin() as session:
        shown: dict[str, Any] | None = request_listings.request(session, sr_id)
        assert shown is not None
        assert shown["messages"][0]["attachments"] == [
            {
                "filename": "fw.eml",
                "content_type": "message/rfc822",
                "size": len(FORWARDED),
                "sha256": digest(FORWARDED),
            },
            {
                "filename": "bundle.mime",
                "content_type": "multipart/mixed",
                "size": len(BUNDLE),
                "sha256": digest(BUNDLE),
            },
        ]
        # and the files read back are those bytes
        ids = list(session.scalars(select(AttachmentRow.id).order_by(AttachmentRow.id)))
        read = sending.files(session.connection(), ids)
    assert [(f.filename, f.data) for f in read] == [("fw.eml", FORWARDED), ("bundle.mime", BUNDLE)]


@pytest.mark.parametrize("nl", [b"\r\n", b"\n"])
def test_the_bundle_is_the_bytes_between_its_header_and_the_outer_boundary(nl: bytes) -> None:
    # Given a bundle followed at once by the outer delimiter
    body = BUNDLE.replace(b"\r\n", nl)
    raw = sent([bundle(body, nl)], nl)
    # When the mail is parsed
    (kept,) = parse(raw).attachments
    # Then the line end before the outer delimiter is the delimiter's (RFC 2046 §5.1.1)
    start = raw.index(b"This is a bundle.")
    end = raw.index(nl + b"--outer", start)
    assert kept.data == raw[start:end] == body
