"""Step 3: turn raw bytes into a ParsedMail. Defects are data; bad mail never raises.

Its header is read by parsers/headers.py, its parts by parsers/parts.py.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime
from types import MappingProxyType
from typing import Any

import mailparser
import nh3

from parsers.dsn import Report, read_report
from parsers.headers import (
    MAX_HEADER_BYTES,
    SIGNAL_HEADERS,
    bounded_fields,
    defect_text,
    display_name,
    header,
    header_defects,
    header_size,
    is_charset_defect,
    long_header_lines,
    single_line,
)
from parsers.large import skeleton
from parsers.markup import html_to_text
from parsers.parts import Attachment, walk

_MSGID = re.compile(r"<([^<>\s]+)>")
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")


@dataclass(frozen=True)
class ParsedMail:
    """Everything the gateway reads from one mail."""

    message_id: str | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    from_addr: str
    from_name: str
    reply_to: tuple[str, ...]
    to: tuple[str, ...]
    cc: tuple[str, ...]
    subject: str
    date: datetime | None
    text: str
    html: str | None
    attachments: tuple[Attachment, ...]
    content_type: str
    headers: Mapping[str, str]
    defects: tuple[str, ...]
    fingerprint: str
    report: Report | None = None  # a bounce, feedback report or read receipt (parsers.dsn)

    @property
    def thread_ids(self) -> tuple[str, ...]:
        """Message-IDs this mail answers: In-Reply-To first, then References newest first."""
        seen: dict[str, None] = dict.fromkeys(self.in_reply_to)
        seen.update(dict.fromkeys(reversed(self.references)))
        return tuple(seen)


def parse(raw: bytes) -> ParsedMail:
    """Parse one mail. Broken structure, charsets and headers become defects, never exceptions.

    Whatever no rule below foresaw still ends as a defect ("unparsable"), never as an exception:
    intake then keeps the mail whole, in quarantine.
    """
    try:
        return _parse(raw)
    except Exception as exc:  # the promise of this module, kept even against its own bugs
        return _unparsable(raw, f"{type(exc).__name__}: {exc}"[:500])


def _parse(raw: bytes) -> ParsedMail:
    if header_size(raw) > MAX_HEADER_BYTES:
        return _unparsable(raw, f"header block over {MAX_HEADER_BYTES} bytes")
    slim = skeleton(raw)
    bounded, cut = bounded_fields(slim.data)
    try:
        parsed = mailparser.parse_from_bytes(bounded)
    except Exception as exc:  # mail-parser's own guard for hostile nesting, and the unforeseen
        return _unparsable(raw, f"{type(exc).__name__}: {exc}")
    message: Message = parsed.message
    # mail-parser's own reading of the charsets is not the one kept (_decode_text): its
    # CharsetDecodeDefect would report replacements the stored text does not have.
    defects = [defect_text(d) for d in parsed.defects if not is_charset_defect(d)]
    defects += long_header_lines(raw) + cut
    plains, htmls, attachments = walk(message, defects, slim)
    # HTML from a customer is never shown as sent (R6.5): scripts, event handlers and
    # javascript: links are gone from the stored copy. The raw mail keeps what arrived. The
    # text is read from the HTML as sent: sanitising keeps the words of <title> and <head>,
    # which html_to_text leaves out.
    joined = "\n".join(htmls)
    html = nh3.clean(joined, link_rel="noopener noreferrer nofollow") if htmls else None
    # An empty text/plain beside the HTML (some webmail and ticket tools send one) is no text:
    # the HTML's is the mail's.
    text = "\n".join(plains) if any(p.strip() for p in plains) else html_to_text(joined)
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    sender_name, sender = _first_address(parsed.from_)
    sender_name = display_name(message, sender, sender_name, defects)
    defects += [d for d in header_defects(message) if d not in defects]
    if not sender:
        defects.append("no sender address in From")
    return ParsedMail(
        message_id=_first_msgid(header(message, "message-id")),
        in_reply_to=_msgids(header(message, "in-reply-to")),
        references=_msgids(header(message, "references")),
        from_addr=sender,
        from_name=sender_name,
        reply_to=_addresses(parsed.reply_to),
        to=_addresses(parsed.to),
        cc=_addresses(parsed.cc),
        subject=header(message, "subject"),  # keeps the space between folded encoded words
        date=_date(message),
        text=text,
        html=html,
        attachments=tuple(attachments),
        content_type=message.get_content_type(),
        headers=MappingProxyType({h: header(message, h) for h in SIGNAL_HEADERS if h in message}),
        defects=tuple(defects),
        fingerprint=fingerprint(raw),
        report=read_report(message),
    )


def fingerprint(raw: bytes) -> str:
    """A content hash that survives the trace headers each hop adds (Received, Delivered-To …).

    Two deliveries of the same mail, one over SMTP and one through an IMAP mailbox, hash alike.
    The body is hashed in blocks of whole lines: a large mail is never copied whole.
    """
    head, _, _ = raw[: MAX_HEADER_BYTES * 4].replace(b"\r\n", b"\n").partition(b"\n\n")
    unfolded = re.sub(rb"\n[ \t]+", b" ", head)
    kept = sorted(
        line.strip()
        for line in unfolded.split(b"\n")
        if line.split(b":", 1)[0].strip().lower()
        in (b"from", b"to", b"cc", b"subject", b"date", b"message-id", b"content-type")
    )
    digest = hashlib.sha256(b"\n".join(kept))
    digest.update(b"\n\n")
    found = _BLANK_LINE.search(raw)  # the first empty line, whatever its line ends
    _hash_lines(digest, memoryview(raw)[found.end() if found else len(raw) :])
    return digest.hexdigest()


def _hash_lines(digest: Any, body: memoryview, block: int = 1 << 20) -> None:
    """The lines of `body`, each without trailing white space, joined by LF, without the empty
    lines at the end; fed to `digest` a block of whole lines at a time."""
    pending = b""  # the LFs ending what was hashed: they count only if text follows
    start = 0
    while start < len(body):
        cut = bytes(body[start + block : start + block + 64 * 1024]).find(b"\n")
        stop = len(body) if start + block >= len(body) or cut < 0 else start + block + cut + 1
        chunk = bytes(body[start:stop])
        if stop == len(body):
            chunk += b"\n"  # the last line's white space goes too
        lines = _strip_lines(chunk)
        text = lines.rstrip(b"\n")
        if text:
            digest.update(pending + text)
            pending = lines[len(text) :]
        else:
            pending += lines
        start = stop


def _strip_lines(chunk: bytes) -> bytes:
    """Each line of `chunk` without trailing white space (map keeps the loop in C)."""
    return b"\n".join(map(bytes.rstrip, chunk.split(b"\n")))


def normalize_msgid(value: str | None) -> str | None:
    """`<id@host>` with brackets, or None; what the gateway stores and compares."""
    return _first_msgid(value or "")


def _unparsable(raw: bytes, why: str) -> ParsedMail:
    return ParsedMail(
        message_id=None,
        in_reply_to=(),
        references=(),
        from_addr="",
        from_name="",
        reply_to=(),
        to=(),
        cc=(),
        subject="",
        date=None,
        text="",
        html=None,
        attachments=(),
        content_type="application/octet-stream",
        headers=MappingProxyType({}),
        defects=(f"unparsable: {why}",),
        fingerprint=fingerprint(raw),
    )


def _first_msgid(value: str) -> str | None:
    found = _MSGID.search(value)
    if found:
        return f"<{found.group(1)}>"
    bare = value.strip()
    return f"<{bare}>" if bare and " " not in bare and "@" in bare else None


def _msgids(value: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(f"<{m}>" for m in _MSGID.findall(value)))


def _first_address(pairs: list[tuple[str, str]]) -> tuple[str, str]:
    for name, addr in pairs or []:
        if addr and "@" in addr:
            return single_line(name), addr.strip().lower()
    return "", ""


def _addresses(pairs: list[tuple[str, str]]) -> tuple[str, ...]:
    return tuple(addr.strip().lower() for _name, addr in pairs or [] if addr and "@" in addr)


def _date(message: Message) -> datetime | None:
    value = message.get("date")
    if value is None:
        return None
    try:
        parsed = parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError):
        return None
    if parsed is None:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def split_addresses(value: str) -> tuple[str, ...]:
    """Addresses of a header value, lower-cased (for envelope and config values)."""
    return tuple(a.strip().lower() for _n, a in getaddresses([value]) if "@" in a)
