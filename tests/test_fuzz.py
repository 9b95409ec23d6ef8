"""Fuzzing (R6.3): structurally hostile MIME through parse and receive. Nothing escapes; every
mail lands stored (accepted, held, bounced or quarantined), or is a duplicate of one that did."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from gateway.assembly import build
from gateway.intake.receipts import RawMail
from gateway.intake.receive import receive
from gateway.outbound.outbox import Outbox, make_broker
from gateway.storage.models import StoredMail
from parsers.mail import ParsedMail, parse
from tests.support.harness import populate, settings_for

CHARSETS = [
    "utf-8",
    "iso-8859-1",
    "windows-1252",
    "iso-2022-jp",
    "koi8-r",
    "utf-16",
    "utf-7",
    "x-unknown",
    "",
    'us-ascii"',
    "gb2312",
]
ENCODINGS = ["7bit", "8bit", "base64", "quoted-printable", "binary", "x-uuencode", "bogus", ""]
TYPES = [
    "text/plain",
    "text/html",
    "application/octet-stream",
    "message/rfc822",
    "application/ms-tnef",
    "image/png",
    "text/calendar",
    "bogus",
    "multipart/mixed",
]
ADDRESSES = [
    "alice@example.com",
    "bernd@example.de",
    "stranger@nowhere.example",
    "analyst@securecall.example",
    "<>",
    "not an address",
    "",
    '"x" <a@b>, c@d',
]

junk = st.binary(max_size=300)
text = st.text(max_size=200)
token = st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,30}", fullmatch=True)


@st.composite
def header_value(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["text", "encoded", "eight-bit", "folded", "huge", "crlf"]))
    if kind == "encoded":
        charset = draw(st.sampled_from(CHARSETS))
        enc = draw(st.sampled_from(["B", "Q", "X"]))
        return f"=?{charset}?{enc}?{draw(text)}?=".encode("utf-8", "surrogatepass")
    if kind == "eight-bit":
        return draw(junk).replace(b"\r", b"").replace(b"\n", b"")
    if kind == "folded":
        return b"\r\n\t".join(s.encode() for s in draw(st.lists(text, max_size=5)))
    if kind == "huge":
        return b"x" * draw(st.integers(1000, 20_000))
    if kind == "crlf":
        return draw(text).encode() + b"\r\nBcc: victim@evil.example\r\n" + draw(text).encode()
    return draw(text).encode("utf-8", "surrogatepass")


@st.composite
def part(draw: st.DrawFn, depth: int) -> bytes:
    content_type = draw(st.sampled_from(TYPES))
    charset = draw(st.sampled_from(CHARSETS))
    encoding = draw(st.sampled_from(ENCODINGS))
    head = f'Content-Type: {content_type}; charset="{charset}"\r\n'
    head += f"Content-Transfer-Encoding: {encoding}\r\n"
    if draw(st.booleans()):
        head += f"Content-Disposition: attachment; filename*=UTF-8''{draw(token)}\r\n"
    if content_type.startswith("multipart") and depth > 0:
        boundary = draw(st.sampled_from(["b", "", "x" * 80, draw(token)]))
        children = draw(st.lists(part(depth - 1), max_size=4))
        body = b"".join(b"--" + boundary.encode() + b"\r\n" + child for child in children)
        if draw(st.booleans()):  # the closing boundary, or not
            body += b"--" + draw(st.sampled_from([boundary, "other"])).encode() + b"--\r\n"
        head = f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n'
        return head.encode() + b"\r\n" + body
    return head.encode() + b"\r\n" + draw(st.one_of(junk, text.map(str.encode))) + b"\r\n"


@st.composite
def hostile_mail(draw: st.DrawFn) -> bytes:
    headers = [
        b"From: " + draw(st.sampled_from(ADDRESSES)).encode(),
        b"Subject: " + draw(header_value()),
        b"To: soc@securecall.example",
    ]
    if draw(st.booleans()):
        headers.append(b"Message-ID: <" + draw(token).encode() + b"@fuzz>")
    for _ in range(draw(st.integers(0, 6))):
        headers.append(draw(token).encode() + b": " + draw(header_value()))
    if draw(st.booleans()):
        headers.append(b"this line has no colon at all")
    body = draw(part(depth=draw(st.integers(0, 25))))
    mail = b"\r\n".join(headers) + b"\r\nMIME-Version: 1.0\r\n" + body
    if draw(st.booleans()):
        mail = mail.replace(b"\r\n", b"\n")
    return mail


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile_mail())
def test_parse_never_raises_and_returns_text(raw: bytes) -> None:
    parsed = parse(raw)
    assert isinstance(parsed, ParsedMail)
    assert isinstance(parsed.text, str)
    assert isinstance(parsed.subject, str)
    assert "\n" not in parsed.subject
    assert "\r" not in parsed.subject
    assert all(isinstance(a.data, bytes) for a in parsed.attachments)


def test_receive_stores_or_quarantines_every_hostile_mail(tmp_path: Path, sink: Any) -> None:
    rt = build(
        settings_for(tmp_path / "var", f"sqlite:///{tmp_path / 'fuzz.db'}", sink_port=sink.port),
        outbox=Outbox(make_broker("")),
    )
    populate(rt)
    outcomes: set[str] = set()

    @settings(
        max_examples=200,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(hostile_mail())
    def check(raw: bytes) -> None:
        receipt = receive(RawMail(raw, "smtp", "fuzz@example.net", ("soc@securecall.example",)), rt)
        outcomes.add(receipt.outcome)
        with rt.sessions.begin() as session:
            stored = session.get(StoredMail, receipt.stored_id)
            assert stored is not None  # never lost
            if receipt.outcome != "duplicate":
                assert bytes(stored.data) == raw

    check()
    with rt.sessions.begin() as session:
        assert session.scalar(select(func.count()).select_from(StoredMail)) > 0
    assert outcomes <= {
        "open",
        "add",
        "reopen",
        "follow_up",
        "answer",
        "note",
        "hold",
        "bounce",
        "quarantined",
        "duplicate",
    }
    rt.sessions.kw["bind"].dispose()
    rt.outbox.broker.close()
