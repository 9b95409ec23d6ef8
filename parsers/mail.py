"""Step 2 of intake: turn raw bytes into a ParsedMail. Defects are data; bad mail never raises."""

from __future__ import annotations

import hashlib
import mimetypes
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime
from functools import partial
from types import MappingProxyType

import mailparser
import nh3
from tnefparse import TNEF

from parsers import charsets, words
from parsers.dsn import Report, read_report
from parsers.markup import html_to_text

# Headers the later steps read (RFC 3834 auto-reply signals, RFC 2369 list headers, loop markers).
SIGNAL_HEADERS = (
    "auto-submitted",
    "precedence",
    "list-id",
    "list-unsubscribe",
    "list-post",
    "x-auto-response-suppress",
    "x-autoreply",
    "x-autorespond",
    "x-loop",
    "return-path",
    "x-failed-recipients",
    "feedback-type",
)
MAX_PARTS = 500  # a mail with more MIME parts than this is treated as hostile; the rest is a defect
MAX_DEPTH = 20
MAX_FIELD_BYTES = 8 * 1024  # one header field, unfolded: longer ones are cut for parsing
MAX_HEADER_BYTES = 256 * 1024  # a header block larger than this is not parsed (quarantine)
MAX_HEADER_LINE = 998  # RFC 5322 §2.1.1: a longer header line is a defect, never a refusal
MAX_TNEF_BYTES = 20 * 1024 * 1024  # a winmail.dat larger than this is kept, not opened
MAX_TNEF_FILES = 64  # files taken out of one winmail.dat
Hint = Callable[[], str | None]  # the charset of the body, asked for only when needed
_MSGID = re.compile(r"<([^<>\s]+)>")
_LINE_END = re.compile(rb"\r\n|\r|\n")  # as the email package reads them


@dataclass(frozen=True)
class Attachment:
    """One attached file, byte for byte as the sender sent it."""

    filename: str
    content_type: str
    data: bytes = field(repr=False)

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


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
    if _header_size(raw) > MAX_HEADER_BYTES:
        return _unparsable(raw, f"header block over {MAX_HEADER_BYTES} bytes")
    bounded, cut = _bounded_fields(raw)
    try:
        parsed = mailparser.parse_from_bytes(bounded)
    except Exception as exc:  # mail-parser's own guard for hostile nesting, and the unforeseen
        return _unparsable(raw, f"{type(exc).__name__}: {exc}")
    message: Message = parsed.message
    # mail-parser's own reading of the charsets is not the one kept (_decode_text): its
    # CharsetDecodeDefect would report replacements the stored text does not have.
    defects = [_defect_text(d) for d in parsed.defects if not _is_charset_defect(d)]
    defects += _long_header_lines(raw) + cut
    plains, htmls, attachments = _walk(message, defects)
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
    sender_name = _display_name(message, sender, sender_name, defects)
    defects += [d for d in _header_defects(message) if d not in defects]
    if not sender:
        defects.append("no sender address in From")
    return ParsedMail(
        message_id=_first_msgid(_header(message, "message-id")),
        in_reply_to=_msgids(_header(message, "in-reply-to")),
        references=_msgids(_header(message, "references")),
        from_addr=sender,
        from_name=sender_name,
        reply_to=_addresses(parsed.reply_to),
        to=_addresses(parsed.to),
        cc=_addresses(parsed.cc),
        subject=_header(message, "subject"),  # keeps the space between folded encoded words
        date=_date(message),
        text=text,
        html=html,
        attachments=tuple(attachments),
        content_type=message.get_content_type(),
        headers=MappingProxyType({h: _header(message, h) for h in SIGNAL_HEADERS if h in message}),
        defects=tuple(defects),
        fingerprint=fingerprint(raw),
        report=read_report(message),
    )


def _header_size(raw: bytes) -> int:
    """Where the header block ends, looked for no further than just past the limit."""
    window = MAX_HEADER_BYTES + 4
    ends = [i for i in (raw.find(b"\r\n\r\n", 0, window), raw.find(b"\n\n", 0, window)) if i >= 0]
    return min(ends) if ends else len(raw)


def _bounded_fields(raw: bytes) -> tuple[bytes, list[str]]:
    """The mail with each long field of encoded words cut to MAX_FIELD_BYTES, for parsing; and
    the defect.

    The standard library's RFC 2047 decoder, which mail-parser runs on every header field, takes
    time that grows with the square of a field full of unfinished encoded words: a 240 kB
    subject took minutes. No real field of encoded words comes near the bound (a long References
    field has none and is left whole); the stored mail keeps what arrived.
    """
    end = _header_size(raw)
    if end <= MAX_FIELD_BYTES:
        return raw, []
    fields: list[bytes] = []
    for line in raw[:end].splitlines(keepends=True):
        if fields and line[:1] in (b" ", b"\t"):
            fields[-1] += line  # a folded continuation belongs to the field above
        else:
            fields.append(line)
    long = [len(field.rstrip(b"\r\n")) for field in fields if _too_long(field)]
    if not long:
        return raw, []
    kept = (f[:MAX_FIELD_BYTES] + b"\r\n" if _too_long(f) else f for f in fields)
    defect = f"{len(long)} header field(s) over {MAX_FIELD_BYTES} bytes cut (longest {max(long)})"
    return b"".join(kept) + raw[end:], [defect]


def _too_long(field: bytes) -> bool:
    return len(field) > MAX_FIELD_BYTES and b"=?" in field


def _long_header_lines(raw: bytes) -> list[str]:
    """RFC 5322 §2.1.1: header lines over 998 bytes (without the line end) are recorded."""
    long = []
    for line in _LINE_END.split(raw[: MAX_HEADER_BYTES + 4]):
        if not line:  # the empty line that ends the header block
            break
        if len(line) > MAX_HEADER_LINE:
            long.append(len(line))
    if not long:
        return []
    return [f"{len(long)} header line(s) over {MAX_HEADER_LINE} bytes (longest {max(long)})"]


def fingerprint(raw: bytes) -> str:
    """A content hash that survives the trace headers each hop adds (Received, Delivered-To …).

    Two deliveries of the same mail, one over SMTP and one through an IMAP mailbox, hash alike.
    """
    head, _, body = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
    unfolded = re.sub(rb"\n[ \t]+", b" ", head)
    kept = sorted(
        line.strip()
        for line in unfolded.split(b"\n")
        if line.split(b":", 1)[0].strip().lower()
        in (b"from", b"to", b"cc", b"subject", b"date", b"message-id", b"content-type")
    )
    digest = hashlib.sha256(b"\n".join(kept))
    digest.update(b"\n\n" + b"\n".join(line.rstrip() for line in body.rstrip().split(b"\n")))
    return digest.hexdigest()


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


def _walk(message: Message, defects: list[str]) -> tuple[list[str], list[str], list[Attachment]]:
    hint = partial(_body_charset, message)  # for file names in raw 8-bit bytes
    plains: list[str] = []
    htmls: list[str] = []
    attachments: list[Attachment] = []
    for count, (part, depth) in enumerate(_parts(message, 0)):
        if count >= MAX_PARTS or depth > MAX_DEPTH:
            defects.append(
                f"MIME structure beyond {MAX_PARTS} parts or depth {MAX_DEPTH}: rest not read"
            )
            break
        if _is_attachment(part):
            attachment = _attachment(part, len(attachments) + 1, defects, hint)
            attachments.append(attachment)
            if is_tnef(attachment.filename, attachment.content_type):
                attachments += _tnef_files(attachment, defects)
        elif part.get_content_type() == "text/plain":
            plains.append(_decode_text(part, defects))
        elif part.get_content_type() == "text/html":
            htmls.append(_decode_text(part, defects))
    return plains, htmls, attachments


def _parts(part: Message, depth: int) -> Iterator[tuple[Message, int]]:
    """Leaf parts in order; a message/rfc822 or an attached container is one leaf (kept whole)."""
    if part.is_multipart() and not _is_attachment(part):
        payload = part.get_payload()
        for child in payload if isinstance(payload, list) else ():
            if isinstance(child, Message):
                yield from _parts(child, depth + 1)
    else:
        yield part, depth


def _is_attachment(part: Message) -> bool:
    if part.get_content_type() == "message/rfc822":
        return True
    if part.get_content_disposition() == "attachment":
        return True
    if part.is_multipart():
        return False
    return part.get_content_type() not in ("text/plain", "text/html") or bool(part.get_filename())


def _attachment(part: Message, number: int, defects: list[str], hint: Hint) -> Attachment:
    content_type = part.get_content_type()
    if part.is_multipart() or content_type == "message/rfc822":
        inner = part.get_payload()
        inner_msg = inner[0] if isinstance(inner, list) and inner else None
        data = inner_msg.as_bytes() if isinstance(inner_msg, Message) else b""
    else:
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
    return Attachment(
        filename=_filename(part, content_type, number, defects, hint),
        content_type=content_type,
        data=data,
    )


def is_tnef(filename: str, content_type: str) -> bool:
    """Outlook's winmail.dat: useless to anyone else; its files are kept beside it."""
    return content_type in ("application/ms-tnef", "application/vnd.ms-tnef") or (
        filename.lower() == "winmail.dat"
    )


def _tnef_files(winmail: Attachment, defects: list[str]) -> list[Attachment]:
    """The files inside Outlook's winmail.dat, named `winmail.dat/<name>`, within limits.

    Only the attachments are read; the compressed RTF body is never decompressed.
    """
    if winmail.size > MAX_TNEF_BYTES:
        defects.append(f"{winmail.filename}: over {MAX_TNEF_BYTES} bytes, not opened")
        return []
    try:
        found = TNEF(winmail.data, do_checksum=False).attachments
    except Exception as exc:  # a broken winmail.dat is a defect; the file itself is kept
        defects.append(f"{winmail.filename}: not readable as TNEF ({type(exc).__name__})")
        return []
    if len(found) > MAX_TNEF_FILES:
        defects.append(f"{winmail.filename}: {len(found)} files, only {MAX_TNEF_FILES} taken")
    files = []
    for number, item in enumerate(found[:MAX_TNEF_FILES], start=1):
        try:
            name = item.long_filename() or item.name or f"file-{number}"
        except Exception:  # a garbled name is replaced, not fatal
            name = f"file-{number}"
        data = item.data if isinstance(item.data, bytes) else b""
        safe = _clean_name(str(name))[:200] or f"file-{number}"
        files.append(Attachment(f"{winmail.filename}/{safe}", "application/octet-stream", data))
    return files


def _clean_name(name: str) -> str:
    """A file name without control characters or path separators."""
    return re.sub(r"[\x00-\x1f\x7f/\\]+", "_", name).strip(" .")


def _filename(part: Message, content_type: str, number: int, defects: list[str], hint: Hint) -> str:
    name = _clean_name(_file_param(part, defects, hint))
    if name:
        return name[:255]
    if content_type == "message/rfc822":
        return f"attached-message-{number}.eml"
    return f"attachment-{number}{mimetypes.guess_extension(content_type) or '.bin'}"


def _file_param(part: Message, defects: list[str], hint: Hint) -> str:
    """The file name as sent: RFC 2231 charset'language'text, RFC 2047 words or raw 8-bit bytes."""
    value: str | tuple[str | None, str | None, str] | None = None
    for header, param in (("content-disposition", "filename"), ("content-type", "name")):
        raw = next((str(v) for k, v in part.raw_items() if k.lower() == header), "")
        # Read raw bytes first: email would give parameters of such a header as U+FFFD.
        found: list[str] = []
        probe = Message()
        probe[header] = words.raw_text(raw, found, hint, "file name")
        value = probe.get_param(param, None, header) or None
        if value:
            defects += found
            break
    if not isinstance(value, tuple):
        return words.decode_words(str(value or ""), defects, hint, "file name")
    label, _language, text = value  # RFC 2231 §4: the %XX octets, as code points up to 255
    try:
        octets = str(text).encode("latin-1")
    except UnicodeEncodeError:  # raw 8-bit bytes already read as text
        return str(text)
    return charsets.noted(charsets.decode(octets, label or None), defects, "file name")


def _decode_text(part: Message, defects: list[str]) -> str:
    payload = part.get_payload(decode=True)
    data = payload if isinstance(payload, bytes) else b""
    decoded = charsets.decode(data, part.get_content_charset())
    return charsets.noted(decoded, defects, f"{part.get_content_type()} part")


def _header(message: Message, name: str, defects: list[str] | None = None) -> str:
    """The first `name` header, decoded; read raw so that 8-bit bytes are not lost on the way."""
    for key, value in message.raw_items():
        if key.lower() == name:
            decoded = words.decode_words(str(value), defects, partial(_body_charset, message), name)
            return _single_line(decoded)
    return ""


def _header_defects(message: Message) -> list[str]:
    """What reading the stored headers had to guess or replace."""
    found: list[str] = []
    for name in ("subject", *SIGNAL_HEADERS):
        _header(message, name, found)
    return list(dict.fromkeys(found))


def _display_name(message: Message, sender: str, parsed: str, defects: list[str]) -> str:
    """The sender's name, decoded here from the raw From header.

    mail-parser leaves raw 8-bit bytes as surrogates and words in a charset it lacks (or one
    that mislabels its bytes) undecoded; its own reading is kept only where the header is not
    one that email.utils can split.
    """
    raw = next((str(v) for k, v in message.raw_items() if k.lower() == "from"), "")
    hint = partial(_body_charset, message)
    for name, addr in getaddresses([raw]):
        if addr and addr.strip().lower() == sender:
            return _single_line(words.decode_words(name, defects, hint, "from"))
    return _single_line(words.decode_words(parsed, defects, hint, "from"))


def _body_charset(message: Message) -> str | None:
    """The charset of the first text part, declared or, without a declaration, as read."""
    for count, (part, _depth) in enumerate(_parts(message, 0)):
        if count >= MAX_PARTS:
            break
        if part.get_content_maintype() != "text" or _is_attachment(part):
            continue
        label = part.get_content_charset()
        if charsets.codec(label):
            return label
        payload = part.get_payload(decode=True)
        return charsets.decode(payload, None).charset if isinstance(payload, bytes) else None
    return None


def _single_line(value: str) -> str:
    return re.sub(r"[\r\n\t]+\s*", " ", value).strip()


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
            return _single_line(name), addr.strip().lower()
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


def _is_charset_defect(defect: object) -> bool:
    items = [str(i) for v in defect.values() for i in v] if isinstance(defect, Mapping) else []
    return bool(items) and all(i.startswith("CharsetDecodeDefect") for i in items)


def _defect_text(defect: object) -> str:
    if isinstance(defect, Mapping):
        return "; ".join(f"{k}: {', '.join(map(str, v))}" for k, v in defect.items())
    return str(defect)


def split_addresses(value: str) -> tuple[str, ...]:
    """Addresses of a header value, lower-cased (for envelope and config values)."""
    return tuple(a.strip().lower() for _n, a in getaddresses([value]) if "@" in a)
