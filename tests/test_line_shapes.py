"""R6.6: no mail is refused for the shape of its lines: long lines, bare LF, bare CR.

Each shape goes over real SMTP and is stored byte for byte as sent (dot-unstuffing aside, RFC
5321 §4.5.2); the size limit stays exact (552 one byte past it). smtplib rewrites nothing in bytes
but dot-stuffs after a bare LF too, so the line-end shapes are sent by a small raw-socket client.
"""

from __future__ import annotations

import base64
import json
import re
import socket
from collections.abc import Callable
from typing import Any

import pytest
from imapclient import IMAPClient
from sqlalchemy import select

from gateway.edges.imap import parse_mailbox_url
from gateway.storage.models import ServiceRequest, StoredMail
from parsers.mail import parse
from tests.conftest import FIXTURES
from tests.support.harness import INTAKE, Gateway, count, eventually, unique
from tests.support.sink import Sink

ALICE = "alice@example.com"


def _head(subject: str, extra: str = "", content_type: str = "text/plain; charset=utf-8") -> str:
    return (
        "From: Alice Example <alice@example.com>\r\n"
        "To: SecureCall SOC <soc@securecall.example>\r\n"
        f"Subject: {subject}\r\n"
        "Date: Wed, 18 Nov 2026 10:02:11 +0100\r\n"
        f"Message-ID: <{unique('shape')}@example.com>\r\n"
        "MIME-Version: 1.0\r\n"
        f"Content-Type: {content_type}\r\n"
        f"{extra}"
        "\r\n"
    )


def json_notification() -> bytes:
    event = {
        "type": "alert",
        "source": "fortigate-fg6h0e5819900001",
        "events": [{"id": n, "rule": "ipsec-down", "peer": "203.0.113.7"} for n in range(60)],
    }
    body = json.dumps(event, separators=(",", ":"))
    assert len(body) > 3000
    return (_head("Alert: IPsec tunnel down", content_type="application/json") + body).encode()


def long_header() -> bytes:
    chain = "; ".join(f"hop{n}.mx.example.net" for n in range(70))
    assert len(chain) > 1200
    head = _head("Route of the lost mail", f"X-Original-Route: {chain}\r\n")
    return (head + "The mail to our Frankfurt office went this way.\r\n").encode()


def outlook_html() -> bytes:
    cells = "".join(f"<td style='padding:2px'>FG6H0E58199000{n:02}</td>" for n in range(500))
    html = f"<html><body><p>Our firewalls:</p><table><tr>{cells}</tr></table></body></html>"
    assert len(html) > 20_000
    return (_head("Firewall list", content_type="text/html; charset=utf-8") + html).encode()


def unwrapped_base64() -> bytes:
    blob = base64.b64encode(bytes(range(256)) * 84).decode()  # 28 KB on one line
    assert len(blob) > 28_000
    return (
        _head("Log attached", content_type='multipart/mixed; boundary="b1"')
        + "--b1\r\nContent-Type: text/plain\r\n\r\nThe log.\r\n--b1\r\n"
        + 'Content-Type: application/octet-stream; name="fw.log"\r\n'
        + "Content-Transfer-Encoding: base64\r\n\r\n"
        + blob
        + "\r\n--b1--\r\n"
    ).encode()


def bare_lf() -> bytes:
    return long_header().replace(b"\r\n", b"\n")


def bare_cr() -> bytes:
    return outlook_html().replace(b"\r\n", b"\r")


def mixed_line_ends() -> bytes:
    return b"".join(
        [
            _head("Mixed line ends").encode(),
            b"a line ended by LF\nand one by CR\rand one by CRLF\r\n",
            b"after a bare LF\n.a dot is content (SMTP lines end in CRLF)\r\n",
            b".a line that starts with a dot\r\n",
            b"..and one with two\r\n",
            b"x" * 5000 + b"\r\n",
        ]
    )


SHAPES: dict[str, Callable[[], bytes]] = {
    "json_3kb_line": json_notification,
    "header_1200_bytes": long_header,
    "outlook_html_20kb_line": outlook_html,
    "base64_28kb_line": unwrapped_base64,
    "bare_lf": bare_lf,
    "bare_cr": bare_cr,
    "mixed_and_dots": mixed_line_ends,
}


def stuffed(data: bytes) -> bytes:
    """What a client sends for `data` (RFC 5321 §4.5.2): a dot doubled at the start of each
    CRLF line, CRLF before the final dot. Returns the DATA section without the final ".\r\n"."""
    wire = re.sub(rb"(^|\r\n)\.", rb"\1..", data)
    return wire if wire.endswith(b"\r\n") else wire + b"\r\n"


class RawClient:
    """A minimal SMTP client on a plain socket: sends the bytes it is given, nothing else."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.buffer = b""
        assert self.reply()[0] == 220

    def reply(self) -> tuple[int, str]:
        while True:
            lines = self.buffer.split(b"\r\n")
            for index, line in enumerate(lines[:-1]):
                if line[3:4] == b" ":
                    self.buffer = b"\r\n".join(lines[index + 1 :])
                    return int(line[:3]), line[4:].decode()
            chunk = self.sock.recv(65536)
            assert chunk, "connection closed"
            self.buffer += chunk

    def command(self, line: bytes) -> tuple[int, str]:
        self.sock.sendall(line + b"\r\n")
        return self.reply()

    def send(self, data: bytes, mail_from: str = ALICE) -> tuple[int, str]:
        assert self.command(b"EHLO client.example.com")[0] == 250
        assert self.command(f"MAIL FROM:<{mail_from}>".encode())[0] == 250
        assert self.command(f"RCPT TO:<{INTAKE}>".encode())[0] == 250
        assert self.command(b"DATA")[0] == 354
        self.sock.sendall(stuffed(data) + b".\r\n")
        return self.reply()

    def close(self) -> None:
        self.command(b"QUIT")
        self.sock.close()


def send_raw(gateway: Gateway, data: bytes) -> tuple[int, str]:
    client = RawClient(gateway.settings.smtp_port)
    try:
        return client.send(data)
    finally:
        client.close()


def stored_data(gateway: Gateway, reply_text: str) -> bytes:
    stored_id = int(re.search(r"stored as (\d+)", reply_text).group(1))
    with gateway.runtime.sessions.begin() as session:
        return bytes(session.get_one(StoredMail, stored_id).data)


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_every_line_shape_is_accepted_and_stored_as_sent(
    gateway: Gateway, sink: Sink, shape: str
) -> None:
    data = SHAPES[shape]()
    code, text = send_raw(gateway, data)
    assert code == 250, text
    expected = data if data.endswith(b"\r\n") else data + b"\r\n"
    assert stored_data(gateway, text) == expected
    sink.wait_to(ALICE)  # and it was handled: an SR opened, its acknowledgement sent
    assert count(gateway, ServiceRequest) == 1


def test_a_header_line_over_998_bytes_is_a_defect_not_a_refusal() -> None:
    parsed = parse(long_header())
    assert parsed.subject == "Route of the lost mail"
    assert any("header line(s) over 998 bytes" in d for d in parsed.defects)
    assert not any("998" in d for d in parse(json_notification()).defects)


@pytest.mark.parametrize(
    ("name", "longest"),
    [
        ("json_notification_long_line_en.eml", 3615),
        ("bounce_long_header_line_en.eml", 1200),
        ("outlook_html_one_line_de.eml", 20264),
        ("base64_unwrapped_line_fr.eml", 27780),
    ],
)
def test_the_long_line_fixtures_have_their_long_lines(name: str, longest: int) -> None:
    # tests/test_fixtures.py sends them through the listener; here: they are what they claim
    raw = (FIXTURES / name).read_bytes()
    assert max(len(line) for line in raw.split(b"\r\n")) == longest
    defects = parse(raw).defects
    assert any("over 998 bytes" in d for d in defects) == name.startswith("bounce")


def test_a_line_of_lf_dot_lf_does_not_end_the_data(gateway: Gateway) -> None:
    # SMTP smuggling: only CRLF.CRLF ends DATA; "\n.\n" inside is content, kept
    data = _head("Smuggling?").encode() + b"first\n.\nMAIL FROM:<x@evil.example>\r\nlast\r\n"
    code, text = send_raw(gateway, data)
    assert code == 250
    assert stored_data(gateway, text) == data
    assert count(gateway, StoredMail) == 1


def test_the_size_limit_stays_exact_whatever_the_lines(make_gateway: Any) -> None:
    gateway: Gateway = make_gateway(max_message_size=40_000)
    head = _head("One long line").encode()
    fits = head + b"x" * (40_000 - len(head) - 2)  # + CRLF: exactly the limit
    code, text = send_raw(gateway, fits)
    assert code == 250, text
    assert stored_data(gateway, text) == fits + b"\r\n"
    assert send_raw(gateway, fits + b"x")[0] == 552  # one byte more
    assert send_raw(gateway, head + b"x" * 100_000)[0] == 552  # a line past the reader's limit
    assert count(gateway, StoredMail) == 1


def test_command_lines_stay_limited(gateway: Gateway) -> None:
    client = RawClient(gateway.settings.smtp_port)
    try:
        assert client.command(b"EHLO client.example.com")[0] == 250
        code, _text = client.command(b"MAIL FROM:<" + b"a" * 2000 + b"@example.com>")
        assert code == 500
        assert client.command(b"NOOP")[0] == 250  # the session goes on
    finally:
        client.close()


@pytest.mark.parametrize("shape", ["json_3kb_line", "header_1200_bytes", "base64_28kb_line"])
def test_long_lines_from_a_mailbox_are_stored_as_fetched(
    make_gateway: Any, dovecot: Any, sink: Sink, shape: str
) -> None:
    url = dovecot.add_user(unique("lines"))
    box = parse_mailbox_url(url)
    data = SHAPES[shape]()
    with IMAPClient("127.0.0.1", port=box.port, ssl=False, timeout=30) as client:
        eventually(lambda: _login(client, box.username, box.password), timeout=10, interval=0.2)
        client.append("INBOX", data)
    gateway: Gateway = make_gateway(imap_url=url, imap=True)
    sink.wait_to(ALICE, timeout=20)
    with gateway.runtime.sessions.begin() as session:
        stored = session.scalars(select(StoredMail)).one()
        assert (stored.source, bytes(stored.data)) == ("imap", data)


def _login(client: IMAPClient, user: str, password: str) -> bool:
    try:
        client.login(user, password)
    except Exception:
        return False
    return True
