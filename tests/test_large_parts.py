"""Step 3 for large mail (parsers/large.py): a mail whose bodies are read in place parses as the
whole mail does: the same texts (a large one cut to its beginning) and the same files."""

from __future__ import annotations

import base64
import binascii
import os
import quopri
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parsers import large
from parsers.mail import ParsedMail, parse

MB = 1024 * 1024


def whole(raw: bytes, monkeypatch: pytest.MonkeyPatch) -> ParsedMail:
    """The mail parsed with nothing cut out of it."""
    with monkeypatch.context() as patch:
        patch.setattr(large, "LARGE_PART", 1 << 40)
        return parse(raw)


def part(headers: str, body: bytes, nl: bytes) -> bytes:
    return headers.replace("\n", nl.decode()).encode() + nl + nl + body


def mail(parts: list[bytes], nl: bytes = b"\r\n", boundary: str = "outer") -> bytes:
    head = (
        "From: Alice <alice@example.com>\nTo: soc@securecall.example\nSubject: files\n"
        f"Message-ID: <large@example.com>\nMIME-Version: 1.0\nContent-Type: multipart/mixed; "
        f'boundary="{boundary}"\n\npreamble\n'
    ).replace("\n", nl.decode())
    delimiter = nl + b"--" + boundary.encode() + nl
    return (
        head.encode()
        + b"".join(delimiter + p for p in parts)
        + nl
        + b"--"
        + boundary.encode()
        + b"--"
        + nl
        + b"epilogue"
        + nl
    )


def attachment(name: str, data: bytes, nl: bytes, encoding: str = "base64") -> bytes:
    if encoding == "base64":
        body = base64.encodebytes(data).replace(b"\n", nl)
    else:
        body = quopri.encodestring(data).replace(b"\n", nl)
    headers = (
        f'Content-Type: application/octet-stream; name="{name}"\n'
        f'Content-Disposition: attachment; filename="{name}"\n'
        f"Content-Transfer-Encoding: {encoding}"
    )
    return part(headers, body, nl)


@pytest.mark.parametrize("nl", [b"\r\n", b"\n"])
def test_files_and_texts_of_a_large_mail_are_those_of_the_whole_mail(
    nl: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a mail with a nested multipart, two large files (base64, quoted-printable), a small
    # one and a boundary that begins with the outer one
    first, second, small = os.urandom(2 * MB), os.urandom(MB) + b"=\x00 \n" * 1000, b"tiny"
    inner = mail(
        [
            part("Content-Type: text/plain; charset=utf-8", b"Hello SOC," + nl, nl),
            attachment("second.bin", second, nl, "quoted-printable"),
        ],
        nl,
        boundary="outer-inner",
    )
    inner_part = inner[inner.index(b"Content-Type: multipart") :]
    raw = mail(
        [attachment("first.pcap", first, nl), inner_part, attachment("s.txt", small, nl)], nl
    )
    # When it is parsed with its large bodies read in place
    cut, reference = parse(raw), whole(raw, monkeypatch)
    # Then it reads as the whole mail does: the same files, sizes and hashes
    assert [(a.filename, a.content(raw), a.size, a.sha256) for a in cut.attachments] == [
        (a.filename, a.data, a.size, a.sha256) for a in reference.attachments
    ]
    names = [a.filename for a in cut.attachments]
    assert names == ["first.pcap", "second.bin", "s.txt"]
    # the two large ones are kept in place, with no decoded copy; the small one as bytes
    assert [bool(a.in_place) for a in cut.attachments] == [True, True, False]
    assert [a.data for a in cut.attachments] == [b"", b"", small]
    # base64 gives the file back as sent (quoted-printable turns its line ends into the mail's)
    assert (cut.attachments[0].content(raw), cut.attachments[2].content(raw)) == (first, small)
    assert cut.text == reference.text == "Hello SOC,"
    assert cut.fingerprint == reference.fingerprint
    assert cut.defects == reference.defects


def test_a_large_text_is_read_for_its_beginning_and_the_cut_is_a_defect(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a plain-text mail of 3 MB
    lines = b"".join(b"line %d of the log\r\n" % n for n in range(150_000))
    raw = (
        b"From: alice@example.com\r\nTo: soc@securecall.example\r\nSubject: log\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + lines
    )
    # When it is parsed
    cut, reference = parse(raw), whole(raw, monkeypatch)
    # Then its text is the beginning of the whole text, and the defects say it was cut
    assert reference.text.startswith(cut.text)
    assert large.TEXT_KEPT * 9 // 10 < len(cut.text) <= large.TEXT_KEPT  # CRLF read as LF
    assert cut.defects == (
        f"text/plain part of {len(lines)} bytes: the first {large.TEXT_KEPT} read",
    )
    assert cut.subject == reference.subject == "log"


def test_a_header_line_that_names_a_cut_body_is_not_taken_from_the_sender() -> None:
    # Given a small mail whose part carries a header like the one that names a cut body
    raw = mail(
        [
            part(
                "Content-Type: text/plain\nX-Large-Body-0000000000000000: 1",
                b"Hi" + b"\r\n",
                b"\r\n",
            ),
            attachment("a.bin", os.urandom(2 * MB), b"\r\n"),
        ]
    )
    # When it is parsed
    parsed = parse(raw)
    # Then the text is the part's own
    assert parsed.text == "Hi"
    assert parsed.attachments[0].size == 2 * MB


@pytest.mark.parametrize("encoding", ["8bit", "7bit", "binary", None])
@pytest.mark.parametrize("nl", [b"\r\n", b"\n"])
def test_a_large_file_sent_unencoded_is_kept_in_place_and_read_back_as_the_whole_mail_reads_it(
    nl: bytes, encoding: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a large CSV sent as it is (8bit UTF-8, 7bit ASCII, or with no encoding named),
    # its last line right before the closing boundary, and a file after it
    row = "Zürich;FG6H0E5819900001;Überlast;ok" if encoding != "7bit" else "Berlin;FG6H0E;ok"
    rows = nl.join(f"{n};{row}".encode() for n in range(120_000))
    cte = f"\nContent-Transfer-Encoding: {encoding}" if encoding else ""
    csv = part(
        f'Content-Type: text/csv; charset=utf-8; name="log.csv"\n'
        f'Content-Disposition: attachment; filename="log.csv"{cte}',
        rows,
        nl,
    )
    raw = mail([csv, attachment("after.bin", b"\x00after", nl)], nl)
    assert len(rows) > large.LARGE_PART
    # When it is parsed with its large body read in place
    cut, reference = parse(raw), whole(raw, monkeypatch)
    # Then the file is kept in place and reads back byte for byte as the whole mail's, which is
    # the rows as sent: the line end before the boundary belongs to the boundary (RFC 2046 §5.1.1)
    assert [bool(a.in_place) for a in cut.attachments] == [True, False]
    got = [(a.filename, a.content(raw), a.size, a.sha256) for a in cut.attachments]
    assert got == [(a.filename, a.data, a.size, a.sha256) for a in reference.attachments]
    assert cut.attachments[0].content(raw) == rows
    assert cut.attachments[1].content(raw) == b"\x00after"


_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _decoded_or_error(decode: Callable[[bytes], bytes], data: bytes) -> bytes | str:
    try:
        return decode(data)
    except binascii.Error:
        return "error"


@settings(max_examples=3000, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(list(_ALPHABET)),
            st.sampled_from(list(b"=\r\n \t\x0b\x00\xff-_.*")),
        ),
        max_size=60,
    ).map(bytes),
    st.sampled_from([b"", b"=", b"==", b"===", b"==\r\n", b"= \r\n", b"\r\n"]),
)
def test_a_large_base64_body_decodes_as_the_standard_library_decodes_it(
    body: bytes, end: bytes
) -> None:
    # padding inside the data, none, or only at the end; stray bytes; errors alike
    data = body + end
    want = _decoded_or_error(binascii.a2b_base64, data)
    assert _decoded_or_error(lambda d: large.decode(d, "base64"), data) == want
    assert _decoded_or_error(lambda d: large.decode(memoryview(d), "base64"), data) == want


def test_a_large_base64_body_with_its_line_ends_decodes_whole() -> None:
    payload = os.urandom(3 * MB + 2)  # padded at the end
    encoded = base64.encodebytes(payload).replace(b"\n", b"\r\n")
    assert large.decode(memoryview(encoded), "base64") == payload
    assert large.decode(encoded[:-4] + b"=AAA\r\n" + encoded, "base64") == binascii.a2b_base64(
        encoded[:-4] + b"=AAA\r\n" + encoded
    )
