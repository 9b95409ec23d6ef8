"""Step 3 for large mail: the mail's structure without its large bodies, and those bodies read
from the raw bytes in place, so that parsing never holds a large part more than once.

The standard library's parser (under mail-parser) keeps a part's body as a list of lines and
then as text, several times its size: a 30 MB mail took 240 MB and seconds. Here each leaf body
over LARGE_PART is cut out of the copy that is parsed, in its place a header line names it, and
the parts' readers (parsers/parts.py) take an attachment's bytes decoded straight from the raw
mail, and of a large text its first TEXT_KEPT bytes; the stored raw mail keeps all of it.
A large attachment is then kept where it is (InPlace): the gateway stores no decoded copy of it,
and decodes it from the stored raw mail when it is read (`decode`).
An attached container (a message/rfc822, a multipart sent as an attachment), of any size, is
named the same way but left in the copy: its file is its body as sent (R1.7), which the parser
cannot give back, as it writes a part anew with its own line ends.
"""

from __future__ import annotations

import binascii
import hashlib
import re
import secrets
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesHeaderParser

import pybase64

LARGE_PART = 1024 * 1024  # a leaf body larger than this is read in place, not parsed
TEXT_KEPT = 1024 * 1024  # of a larger text body, the bytes read as the mail's text
MAX_HEADER_BYTES = 256 * 1024  # as parsers/headers.py
MAX_DEPTH = 20  # deeper parts are left to the parser (parsers/parts.py sees them as a defect)
MAX_PARTS = 500  # as parsers/parts.py: the parts looked at, cut or not
_HEADER_END = re.compile(rb"\r?\n\r?\n")


@dataclass(frozen=True)
class InPlace:
    """A large attachment left in the raw mail: its encoded body is raw[start:start + length],
    in `encoding`; `size` and `sha256` are those of the decoded file."""

    start: int
    length: int
    encoding: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Body:
    """A leaf body cut out, or an attached container's body: where it is in the raw mail and how
    it is encoded."""

    raw: memoryview
    encoding: str  # Content-Transfer-Encoding, lower-case; "" for none
    start: int  # the offset of `raw` in the mail

    @property
    def size(self) -> int:
        return len(self.raw)

    def decoded(self, limit: int | None = None) -> bytes:
        """The body's bytes (RFC 2045 §6), of its first `limit` encoded bytes if given."""
        data = self.raw if limit is None else self.raw[: _line_end(self.raw, limit)]
        return decode(data, self.encoding)

    @property
    def is_large(self) -> bool:
        return self.size > LARGE_PART

    def in_place(self) -> InPlace:
        """Where the body is and what it decodes to; its decoded copy is let go at once."""
        data = self.decoded()
        digest = hashlib.sha256(data).hexdigest()
        return InPlace(self.start, self.size, self.encoding, len(data), digest)


def decode(data: bytes | memoryview, encoding: str) -> bytes:
    """An encoded body's bytes (RFC 2045 §6): the one decoder of a large part, when the mail is
    parsed and when its attachment is read back from the stored mail, so that both agree."""
    if encoding == "base64":
        return _a2b_base64(data)
    if encoding == "quoted-printable":
        return binascii.a2b_qp(bytes(data))
    return bytes(data)


_PAD = re.compile(rb"=")


def _a2b_base64(data: bytes | memoryview) -> bytes:
    """binascii.a2b_base64, as the parser decodes: what is not base64 is skipped, and decoding
    stops at the first padding. pybase64 (SIMD) does the same four times as fast (0.08 against
    0.33 s for 100 MB) but reads on past a padding inside the data: it is used only when the
    padding, if any, ends the body, as it does in every well-formed one (the two agree on
    every input that passes this test, errors included: tests/test_large_parts.py)."""
    found = _PAD.search(data)
    if found is None or not bytes(data[found.start() :]).strip(b"= \t\r\n"):
        return pybase64.b64decode(data, validate=False)
    return binascii.a2b_base64(data)


@dataclass(frozen=True)
class Skeleton:
    """The mail to parse, and the bodies cut out of it or kept whole (an attached container's)
    by the value of the `marker` header."""

    data: bytes
    marker: str
    bodies: dict[str, Body]

    def body(self, part: Message) -> Body | None:
        if not self.bodies:
            return None
        return self.bodies.get(str(part.get(self.marker, "")).strip())


def skeleton(raw: bytes) -> Skeleton:
    """The mail itself when it holds no large body and no attached container, else a copy
    without the large bodies, each container's header naming it."""
    marker = f"X-Large-Body-{secrets.token_hex(8)}"  # no sender can forge it
    if len(raw) <= LARGE_PART:
        lower = raw.lower()
        if b"rfc822" not in lower and b"multipart/" not in lower:
            return Skeleton(raw, marker, {})  # one small part (most mail): nothing to look for
    view = memoryview(raw)
    pieces: list[memoryview | bytes] = []
    bodies: dict[str, Body] = {}
    try:
        end = _cut(view, 0, len(raw), 0, marker, pieces, bodies, [0])
    except Exception:  # a structure no rule here foresaw: the parser reads the whole mail
        return Skeleton(raw, marker, {})
    if not bodies:
        return Skeleton(raw, marker, {})
    pieces.append(view[end:])
    return Skeleton(b"".join(pieces), marker, bodies)


def _cut(
    view: memoryview,
    start: int,
    end: int,
    depth: int,
    marker: str,
    pieces: list[memoryview | bytes],
    bodies: dict[str, Body],
    seen: list[int],
) -> int:
    """Cut the large leaf bodies of the part view[start:end] and name its attached containers;
    returns how far `pieces` reach. `seen` counts the parts looked at."""
    seen[0] += 1
    if bytes(view[start : start + 1]) == b"\n" or bytes(view[start : start + 2]) == b"\r\n":
        return start  # a part without header lines: left to the parser
    if seen[0] > MAX_PARTS or depth > MAX_DEPTH:
        return start  # beyond parsers/parts.py's limits: the parser's guards apply
    found = _HEADER_END.search(view, start, min(end, start + MAX_HEADER_BYTES))
    if found is None:
        return start
    head = BytesHeaderParser().parsebytes(bytes(view[start : found.end()]))
    body_start = found.end()
    body = view[body_start:end]
    boundary = head.get_boundary() if head.get_content_maintype() == "multipart" else None
    done = start
    if head.get_content_type() == "message/rfc822" or (
        boundary and head.get_content_disposition() == "attachment"
    ):  # parsers/parts.py keeps it as one file, its body as sent whatever its size (R1.7)
        done = _name(view, start, found, Body(body, "", body_start), marker, pieces, bodies)
        if not boundary:
            return done  # a message's own parts are its own: not looked into
    if boundary:
        raw = bytes(view.obj)  # the mail itself (bytes of bytes is no copy)
        delimiter = boundary.encode("ascii", "surrogateescape")  # the bytes as sent
        for child_start, child_end in _children(raw, body_start, end, delimiter):
            pieces.append(view[done:child_start])
            done = _cut(view, child_start, child_end, depth + 1, marker, pieces, bodies, seen)
        return done
    if len(body) <= LARGE_PART:
        return start
    encoding = str(head.get("content-transfer-encoding", "")).strip().lower()
    _name(view, start, found, Body(body, encoding, body_start), marker, pieces, bodies)
    pieces.append(view[found.start() : found.end()])  # the header's end, and no body
    return end


def _name(
    view: memoryview,
    start: int,
    found: re.Match[bytes],
    body: Body,
    marker: str,
    pieces: list[memoryview | bytes],
    bodies: dict[str, Body],
) -> int:
    """Add a header line naming `body` to the header of its part, view[start:found.end()];
    returns how far `pieces` reach."""
    name = str(len(bodies) + 1)
    bodies[name] = body
    newline = b"\r\n" if bytes(view[found.start() : found.start() + 1]) == b"\r" else b"\n"
    pieces.append(view[start : found.start()])
    pieces.append(newline + f"{marker}: {name}".encode())
    return found.start()


def _children(raw: bytes, start: int, end: int, boundary: bytes) -> list[tuple[int, int]]:
    """The spans of a multipart's parts, between its delimiter lines (RFC 2046 §5.1.1)."""
    dash = b"--" + boundary
    spans: list[tuple[int, int]] = []
    begun, at = None, start
    while (found := raw.find(dash, at, end)) >= 0:
        at = found + len(dash)
        if found != start and raw[found - 1 : found] != b"\n":
            continue  # not at the start of a line
        closing = raw[at : at + 2] == b"--"
        line_end = raw.find(b"\n", at, end)
        stop = end if line_end < 0 else line_end + 1
        if raw[at + 2 * closing : stop].strip(b" \t\r\n"):
            continue  # a longer boundary that begins with this one
        if begun is not None:  # the line end before a delimiter is the delimiter's
            before = found - (2 if raw[found - 2 : found] == b"\r\n" else 1)
            spans.append((begun, max(begun, before)))
        if closing:
            return spans
        begun = at = stop
    return spans  # without a close delimiter the last part runs on: left to the parser


def _line_end(data: memoryview, at: int) -> int:
    """`at`, or the end of the line it falls in, so that an encoded line is never split."""
    if at >= len(data):
        return len(data)
    newline = bytes(data[at : at + 1000]).find(b"\n")
    return at + newline + 1 if newline >= 0 else at
