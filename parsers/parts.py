"""Step 3, the parts of a mail: its texts and its attachments (byte for byte), Outlook's
winmail.dat opened within limits, file names read in their charset. Defects are data."""

from __future__ import annotations

import hashlib
import mimetypes
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import Message
from functools import partial

from tnefparse import TNEF

from parsers import charsets, words
from parsers.large import TEXT_KEPT, Body, InPlace, Skeleton, decode

MAX_PARTS = 500  # a mail with more MIME parts than this is treated as hostile; the rest is a defect
MAX_DEPTH = 20
MAX_TNEF_BYTES = 20 * 1024 * 1024  # a winmail.dat larger than this is kept, not opened
MAX_TNEF_FILES = 64  # files taken out of one winmail.dat
Hint = Callable[[], str | None]  # the charset of the body, asked for only when needed


@dataclass(frozen=True)
class Attachment:
    """One attached file, byte for byte as the sender sent it: its bytes in `data`, or for a
    large one (parsers/large.py) where they are in the raw mail, `data` then empty."""

    filename: str
    content_type: str
    data: bytes = field(repr=False)
    in_place: InPlace | None = None

    @property
    def size(self) -> int:
        return self.in_place.size if self.in_place else len(self.data)

    @property
    def sha256(self) -> str:
        if self.in_place:
            return self.in_place.sha256
        return hashlib.sha256(self.data).hexdigest()

    def content(self, raw: bytes) -> bytes:
        """The file's bytes; `raw` is the mail it came from."""
        if self.in_place is None:
            return self.data
        place = self.in_place
        return decode(memoryview(raw)[place.start : place.start + place.length], place.encoding)


def walk(
    message: Message, defects: list[str], cut: Skeleton | None = None
) -> tuple[list[str], list[str], list[Attachment]]:
    """The texts and attachments of a mail; a body `cut` out of it is read from the raw mail."""
    hint = partial(body_charset, message)  # for file names in raw 8-bit bytes
    plains: list[str] = []
    htmls: list[str] = []
    attachments: list[Attachment] = []
    for count, (part, depth) in enumerate(leaves(message, 0)):
        if count >= MAX_PARTS or depth > MAX_DEPTH:
            defects.append(
                f"MIME structure beyond {MAX_PARTS} parts or depth {MAX_DEPTH}: rest not read"
            )
            break
        body = cut.body(part) if cut else None
        if is_attachment(part):
            attachment = _attachment(part, len(attachments) + 1, defects, hint, body)
            attachments.append(attachment)
            if is_tnef(attachment.filename, attachment.content_type):
                attachments += _tnef_files(attachment, defects)
        elif part.get_content_type() == "text/plain":
            plains.append(_decode_text(part, defects, body))
        elif part.get_content_type() == "text/html":
            htmls.append(_decode_text(part, defects, body))
    return plains, htmls, attachments


def leaves(part: Message, depth: int) -> Iterator[tuple[Message, int]]:
    """Leaf parts in order; a message/rfc822 or an attached container is one leaf (kept whole)."""
    if part.is_multipart() and not is_attachment(part):
        payload = part.get_payload()
        for child in payload if isinstance(payload, list) else ():
            if isinstance(child, Message):
                yield from leaves(child, depth + 1)
    else:
        yield part, depth


def is_attachment(part: Message) -> bool:
    if part.get_content_type() == "message/rfc822":
        return True
    if part.get_content_disposition() == "attachment":
        return True
    if part.is_multipart():
        return False
    return part.get_content_type() not in ("text/plain", "text/html") or bool(part.get_filename())


def _attachment(
    part: Message, number: int, defects: list[str], hint: Hint, body: Body | None
) -> Attachment:
    content_type = part.get_content_type()
    filename = _filename(part, content_type, number, defects, hint)
    # A large file is left where it is in the mail; a winmail.dat is opened, so it is copied
    if body is not None and body.is_large and not is_tnef(filename, content_type):
        return Attachment(filename, content_type, b"", body.in_place())
    if body is not None:
        data = body.decoded()
    elif part.is_multipart() or content_type == "message/rfc822":
        data = _written_anew(part)
        defects.append(
            f"{filename}: not found in the mail as sent; kept as the email package writes it"
        )
    else:
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
    return Attachment(filename=filename, content_type=content_type, data=data)


def _written_anew(container: Message) -> bytes:
    """The body of a container parsers/large.py did not find in the raw mail (a digest's message
    without header lines, a part beyond its limits), as the email package writes it: LF line
    ends, so not byte for byte (R1.7)."""
    written = container.as_bytes()
    if not container.keys():  # the empty line that ends no header lines
        return written[1:]
    return written.partition(b"\n\n")[2]


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
        safe = clean_name(str(name))[:200] or f"file-{number}"
        files.append(Attachment(f"{winmail.filename}/{safe}", "application/octet-stream", data))
    return files


def clean_name(name: str) -> str:
    """A file name without control characters or path separators."""
    return re.sub(r"[\x00-\x1f\x7f/\\]+", "_", name).strip(" .")


def _filename(part: Message, content_type: str, number: int, defects: list[str], hint: Hint) -> str:
    name = clean_name(_file_param(part, defects, hint))
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


def _decode_text(part: Message, defects: list[str], body: Body | None = None) -> str:
    if body is not None:  # a large text: its beginning is the mail's text, all of it is kept raw
        data = body.decoded(TEXT_KEPT)
        defects.append(
            f"{part.get_content_type()} part of {body.size} bytes: the first {TEXT_KEPT} read"
        )
    else:
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
    decoded = charsets.decode(data, part.get_content_charset())
    return charsets.noted(decoded, defects, f"{part.get_content_type()} part")


def body_charset(message: Message) -> str | None:
    """The charset of the first text part, declared or, without a declaration, as read."""
    for count, (part, _depth) in enumerate(leaves(message, 0)):
        if count >= MAX_PARTS:
            break
        if part.get_content_maintype() != "text" or is_attachment(part):
            continue
        label = part.get_content_charset()
        if charsets.codec(label):
            return label
        payload = part.get_payload(decode=True)
        return charsets.decode(payload, None).charset if isinstance(payload, bytes) else None
    return None
