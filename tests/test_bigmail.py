"""Large mail through the real SMTP listener: stored once, whole and byte for byte, its
attachment kept with the right metadata, its long text cut to an excerpt (R6.6)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import smtplib
import socket
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from gateway.edges import smtp_data
from gateway.edges.smtp_data import DATA_BLOCK
from gateway.intake.queries import stored_row
from gateway.outbound import sending
from gateway.storage.models import Message, StoredMail
from gateway.storage.models.mail import AttachmentRow
from parsers.large import TEXT_KEPT
from tests.support.harness import INTAKE, Gateway
from tests.support.sink import Sink

ALICE = "alice@example.com"
MB = 1024 * 1024


def large_mail(message_id: str, payload: bytes, text_lines: int) -> bytes:
    """A mail with a long text (some lines start with a dot) and `payload` attached in base64."""
    text = b"".join(
        (b"." if n % 7 == 0 else b"") + b"line %d of the firewall log, peer 192.0.2.7\r\n" % n
        for n in range(text_lines)
    )
    encoded = base64.encodebytes(payload).replace(b"\n", b"\r\n")
    return (
        (
            f"From: Alice Archer <{ALICE}>\r\nTo: SOC <{INTAKE}>\r\n"
            "Subject: Capture of the outage\r\n"
            f"Message-ID: {message_id}\r\nDate: Sat, 21 Nov 2026 10:00:00 +0100\r\n"
            'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="cut-here"\r\n\r\n'
            "--cut-here\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        ).encode()
        + text
        + (
            b'--cut-here\r\nContent-Type: application/octet-stream; name="capture.pcap"\r\n'
            b'Content-Disposition: attachment; filename="capture.pcap"\r\n'
            b"Content-Transfer-Encoding: base64\r\n\r\n" + encoded + b"--cut-here--\r\n"
        )
    )


@pytest.mark.parametrize("database", ["sqlite_url", "postgres_url"])
def test_a_large_mail_is_stored_once_whole_with_its_attachment_and_a_text_excerpt(
    make_gateway: Callable[..., Gateway], request: pytest.FixtureRequest, database: str
) -> None:
    # Given a gateway that takes mail of up to 16 MB
    gateway = make_gateway(database_url=request.getfixturevalue(database), max_message_size=16 * MB)
    payload = os.urandom(3 * MB)
    raw = large_mail("<large-1@example.com>", payload, text_lines=40_000)
    assert len(raw) > 5 * MB
    # When it arrives over SMTP
    with smtplib.SMTP("127.0.0.1", gateway.settings.smtp_port, timeout=60) as client:
        client.ehlo("client.example.com")
        client.mail(ALICE, [f"SIZE={len(raw)}"])
        client.rcpt(INTAKE)
        code, reply = client.data(raw)
    # Then it is stored once, byte for byte, and read back whole
    assert code == 250, reply
    assert gateway.rt is not None
    with gateway.rt.sessions.begin() as session:
        stored = session.scalars(select(StoredMail)).all()
        assert len(stored) == 1
        assert stored[0].raw == raw
        assert stored[0].size == len(raw)
        row = stored_row(session.connection(), stored[0].id)
        assert row is not None
        assert row.data == raw
        # its attachment is the file as sent, with its size and sha256
        files = session.scalars(select(AttachmentRow)).all()
        assert [(f.filename, f.content_type, f.size) for f in files] == [
            ("capture.pcap", "application/octet-stream", len(payload))
        ]
        assert files[0].sha256 == hashlib.sha256(payload).hexdigest()
        # kept in place in the stored mail, no second copy, and read back as sent
        assert (files[0].raw_mail_id, bytes(files[0].data)) == (stored[0].id, b"")
        read = sending.files(session.connection(), [files[0].id])
        assert [(f.filename, f.data) for f in read] == [("capture.pcap", payload)]
        # and its text is the beginning of the long text, its own dots kept
        text = session.scalars(select(Message.text)).one()
    assert text.startswith(".line 0 of the firewall log, peer 192.0.2.7\nline 1 of")
    assert TEXT_KEPT // 2 < len(text) <= TEXT_KEPT


def test_the_end_of_data_split_across_reads_and_a_pipelined_command_are_both_seen(
    make_gateway: Callable[..., Gateway],
) -> None:
    # Given a mail whose end of DATA falls across two reads of the listener
    gateway = make_gateway(max_message_size=4 * MB)
    head = (
        f"From: <{ALICE}>\r\nTo: <{INTAKE}>\r\nSubject: split\r\n"
        "Message-ID: <split@example.com>\r\n\r\n"
    )
    body = head.encode() + b"x" * (DATA_BLOCK - len(head) - 1) + b"\r\n..stuffed\r\n"
    with socket.create_connection(("127.0.0.1", gateway.settings.smtp_port), timeout=30) as sock:
        replies = sock.makefile("rb")
        replies.readline()
        for command in (
            b"EHLO client.example.com",
            f"MAIL FROM:<{ALICE}>".encode(),
            f"RCPT TO:<{INTAKE}>".encode(),
            b"DATA",
        ):
            sock.sendall(command + b"\r\n")
            while replies.readline()[3:4] == b"-":
                pass
        # When the content, its end and the next command come in one write
        sock.sendall(body + b".\r\nNOOP\r\n")
        stored_reply = replies.readline()
        noop_reply = replies.readline()
    # Then the mail is stored, unstuffed, and the pipelined NOOP is answered after it
    assert stored_reply.startswith(b"250 2.0.0 OK: stored as"), stored_reply
    assert noop_reply.startswith(b"250"), noop_reply
    assert gateway.rt is not None
    with gateway.rt.sessions.begin() as session:
        data = bytes(session.scalars(select(StoredMail.data)).one())
    assert data == body.replace(b"\r\n..stuffed", b"\r\n.stuffed")


def test_the_socs_copy_of_a_large_mail_carries_its_attachment_byte_for_byte(
    make_gateway: Callable[..., Gateway], sink: Sink
) -> None:
    # Given a gateway that takes mail of up to 16 MB, and a mail with a 3 MB file
    gateway = make_gateway(max_message_size=16 * MB)
    payload = os.urandom(3 * MB)
    raw = large_mail("<large-soc@example.com>", payload, text_lines=100)
    # When it arrives over SMTP
    assert gateway.send(raw, mail_from=ALICE).code == 250
    # Then the SOC's copy has the file as sent, read back from where the stored mail keeps it
    # (its subject also asks for P1: the SOC gets that alert, which carries no files, as well)
    to_soc = sink.wait_to(gateway.settings.soc_queue_address, count=2, timeout=60)
    (copy,) = [m for m in to_soc if "New P3 SR" in m.message["Subject"]]
    files = [
        (p.get_filename(), p.get_content_type(), p.get_payload(decode=True))
        for p in copy.message.iter_attachments()
    ]
    assert files == [("capture.pcap", "application/octet-stream", payload)]


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.sampled_from([b"\r\n", b"\r", b"\n", b".", b"..", b"x", b"\r\n.\r\n"]), max_size=40
    ),
    st.integers(min_value=1, max_value=9),
)
def test_the_content_of_data_read_in_any_blocks_is_the_content_read_whole(
    pieces: list[bytes], block: int
) -> None:
    # Given what a client sends after DATA: content, its end, and a pipelined command
    stream = b"".join(pieces) + b"\r\n.\r\nNOOP\r\n"
    at = (b"\r\n" + stream).find(b"\r\n.\r\n")  # the end of DATA: CRLF.CRLF, a line's start
    want = (b"\r\n" + stream)[: at + 2].replace(b"\r\n.", b"\r\n")[2:]
    rest = (b"\r\n" + stream)[at + 5 :]

    async def read() -> tuple[bytes | None, bytes]:
        reader = asyncio.StreamReader()
        reader.feed_data(stream)
        reader.feed_eof()
        content = await smtp_data.read_content(reader, None)
        return content, await reader.read()

    # When it is read `block` bytes at a time
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(smtp_data, "DATA_BLOCK", block)
        content, after = asyncio.run(read())
    # Then the content is unstuffed and ends where the whole stream says, the rest given back
    assert (content, after) == (want, rest)
