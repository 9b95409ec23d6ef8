"""Step 10, first room: compose the MIME message of a Delivery, as the bytes that go on the wire
(threading and auto-reply headers, a bulletin's own fields, attachments and inline images).

What is signed (workers/signing.py) and sent (workers/transport.py) is what `as_bytes` returns.
"""

from __future__ import annotations

import binascii
import io
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from email import policy
from email.encoders import encode_base64
from email.generator import BytesGenerator
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.utils import formataddr, formatdate
from typing import TYPE_CHECKING

from gateway.core.settings import Settings
from gateway.outbound.sending import Claimed, File
from workers.quoted_printable import quoted_printable
from workers.transport import PermanentFailure

if TYPE_CHECKING:  # the renderer's modules (Jinja2, css-inline, markdown-it) are the workers'
    from workers.render import Rendered


@dataclass(frozen=True)
class Inline:
    """An image shown inside the HTML part (<img src="cid:…">, RFC 2392)."""

    cid: str
    filename: str
    data: bytes
    content_type: str = "image/png"


def compose(
    delivery: Claimed,
    rendered: Rendered,
    settings: Settings,
    files: Sequence[File] = (),
    inline: Sequence[Inline] = (),
) -> Message:
    """The message with threading headers (RFC 5322 §3.6.4) and auto-reply markers (RFC 3834),
    `files` attached, and `inline` images beside the HTML in a multipart/related (RFC 2387).

    Built with the compat32 classes (four times faster than EmailMessage here); every header
    value is checked to be one line, so nothing taken from a mail can add a header (R6.5).
    """
    body = _text_part("plain", rendered.text)
    if rendered.html is not None:
        html = _text_part("html", rendered.html)
        if inline:
            html = MIMEMultipart("related", _subparts=[html, *map(_inline, inline)])
            html.set_param("type", "text/html")  # RFC 2387 §3.1: the root part's type
        message: Message = MIMEMultipart("alternative", _boundary(), [body, html])
    else:
        message = body
    if files:
        message = MIMEMultipart("mixed", _boundary(), [message, *map(_attachment, files)])
    for name, value in _fields(delivery, rendered, settings):
        message[name] = value  # type: ignore[assignment]  # compat32 takes str or Header
    return message


def compose_bytes(
    delivery: Claimed,
    rendered: Rendered,
    settings: Settings,
    files: Sequence[File] = (),
    inline: Sequence[Inline] = (),
) -> bytes:
    """`as_bytes(compose(…))`, the same bytes; a mail without files or images (every
    acknowledgement, notice and bulletin) put together as text, without email.message's
    objects and generator (two thirds of the time of composing one)."""
    if files or inline:
        return as_bytes(compose(delivery, rendered, settings, files, inline))
    fields = "".join(_field(name, value) for name, value in _fields(delivery, rendered, settings))
    text = _TEXT_PART % b"plain"
    if rendered.html is None:  # the generator writes the part's own fields first
        return b"%s%s\r\n%s" % (text, _ascii(fields), quoted_printable(rendered.text))
    boundary = _boundary().encode("ascii")
    head = b'Content-Type: multipart/alternative; boundary="%s"\r\nMIME-Version: 1.0\r\n'
    parts = [
        text + b"\r\n" + quoted_printable(rendered.text),
        _TEXT_PART % b"html" + b"\r\n" + quoted_printable(rendered.html),
    ]
    between = b"\r\n--%s\r\n" % boundary
    body = b"--%s\r\n%s\r\n--%s--\r\n" % (boundary, between.join(parts), boundary)
    return b"%s%s\r\n%s" % (_ascii(_field_lines(head % boundary)), _ascii(fields), body)


# the fields of a part of _text_part, as the generator writes them
_TEXT_PART = (
    b'Content-Type: text/%s; charset="utf-8"\r\nMIME-Version: 1.0\r\n'
    b"Content-Transfer-Encoding: quoted-printable\r\n"
)


def _ascii(text: str) -> bytes:
    return text.encode("ascii", "surrogateescape")  # as BytesGenerator.write encodes


def _field_lines(head: bytes) -> str:
    """Fields given as lines, each folded as the generator folds it."""
    lines = head.decode("ascii").removesuffix("\r\n").split("\r\n")
    return "".join(_field(*line.split(": ", 1)) for line in lines)


def _fields(
    delivery: Claimed, rendered: Rendered, settings: Settings
) -> list[tuple[str, str | Header]]:
    """The header fields compose writes, in order, the empty ones left out; each checked to be
    one line."""
    headers: dict[str, str | Header | None] = {
        "From": formataddr((settings.gateway_name, settings.gateway_address), "utf-8"),
        "To": _address(delivery.recipient),
        "Subject": _header_text(_one_line(rendered.subject)),
        "Date": formatdate(usegmt=True),
        "Message-ID": delivery.message_id,
        "In-Reply-To": _threading(delivery.in_reply_to),
        "References": _threading(delivery.references),
        "Auto-Submitted": delivery.auto_submitted,
        "X-Auto-Response-Suppress": "All",  # asks Exchange not to answer with an OOF
        "X-Loop": settings.gateway_address,
    }
    fields: list[tuple[str, str | Header]] = []
    for name, value in [*headers.items(), *_own_fields(delivery.headers, headers)]:
        if not value:
            continue
        if re.search(r"[\r\n]", str(value)):
            raise PermanentFailure(f"{name} would span lines: {value!r}")
        fields.append((name, value))
    return fields


# RFC 5322 §2.1.1: no line over 998 bytes, and a Message-ID cannot be folded: one longer than
# this (a sender's, copied into In-Reply-To and References) is left out; the others thread
LONGEST_MESSAGE_ID = 900


def _threading(ids: str | None) -> str | None:
    """In-Reply-To or References without a Message-ID too long for a line; as given otherwise
    (what would span lines is refused below)."""
    if not ids or all(len(m) <= LONGEST_MESSAGE_ID for m in ids.split()):
        return ids
    return " ".join(m for m in ids.split() if len(m) <= LONGEST_MESSAGE_ID)


# RFC 5322 §3.6.8: a field name is printable ASCII without the colon
_FIELD_NAME = re.compile(r"[!-9;-~]{1,76}")


def _own_fields(
    fields: dict[str, str] | None, standard: dict[str, str | Header | None]
) -> list[tuple[str, str]]:
    """A Delivery's own header fields (a bulletin's List-* fields, Precedence), each checked:
    a proper field name, not one of the fields compose writes, one line of ASCII."""
    taken = {name.lower() for name in standard}
    checked = []
    for name, value in (fields or {}).items():
        if not _FIELD_NAME.fullmatch(name) or name.lower() in taken:
            raise PermanentFailure(f"not a header field a Delivery may set: {name!r}")
        if not str(value).isascii():
            raise PermanentFailure(f"{name} is not ASCII: {value!r}")
        checked.append((name, str(value)))
    return checked


def envelope_sender(delivery: Claimed, settings: Settings) -> str:
    """MAIL FROM: the Delivery's own (a bulletin's VERP address, R4.4) or the gateway's."""
    return _address(delivery.mail_from) if delivery.mail_from else settings.gateway_address


def _boundary() -> str:
    """A boundary no part can contain: "=_" never occurs in quoted-printable or base64 text
    (RFC 2045 §6.7, §6.8), so the generator need not search the parts for it (a third of the
    time of flattening a mail). Since no part can contain it, it need only differ from the
    boundaries of the parts it encloses (RFC 2046 §5.1.1), not be unguessable: random bits, not
    the system's random source, which took a system call for each mail."""
    return f"=_{random.getrandbits(96):024x}"


_MIME_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*")


def _text_part(subtype: str, text: str) -> Message:
    """A UTF-8 text part in quoted-printable: readable as raw text, and 7-bit safe for any relay
    (RFC 2045 §6.7). Encoded by binascii, in C: email.charset's encoder is pure Python and took
    a fifth of the time of composing a mail."""
    part = MIMENonMultipart("text", subtype, charset="utf-8")
    part["Content-Transfer-Encoding"] = "quoted-printable"
    encoded = binascii.b2a_qp(text.encode("utf-8"), istext=True)
    part.set_payload(encoded.decode("ascii"))
    return part


def _attachment(file: File) -> Message:
    """A file as a base64 part, under its own name (RFC 2231 when it is not ASCII)."""
    # the name of a file taken out of a winmail.dat is "winmail.dat/<name>"
    name = _one_line(file.filename.rpartition("/")[2]) or "attachment"
    kind = file.content_type.lower()
    if kind.startswith(("message/", "multipart/")):
        # base64 is not allowed on these (RFC 2046 §5.2.1): a forwarded mail goes as a file
        if kind == "message/rfc822" and not name.lower().endswith(".eml"):
            name = f"{name}.eml"
        kind = "application/octet-stream"
    elif not _MIME_TYPE.fullmatch(kind):
        kind = "application/octet-stream"
    part = MIMENonMultipart(*kind.split("/", 1))
    part.set_payload(file.data)
    encode_base64(part)
    filename: str | tuple[str, str, str] = name if name.isascii() else ("utf-8", "", name)
    part.add_header("Content-Disposition", "attachment", filename=filename)
    return part


def _inline(image: Inline) -> Message:
    part = MIMENonMultipart(*image.content_type.split("/", 1))
    part.set_payload(image.data)
    encode_base64(part)
    part["Content-ID"] = f"<{_one_line(image.cid)}>"
    part.add_header("Content-Disposition", "inline", filename=_one_line(image.filename))
    return part


def _address(value: str) -> str:
    if re.search(r"[\r\n<>,;\s\"()]", value) or value.count("@") != 1:
        raise PermanentFailure(f"not a single mail address: {value!r}")
    return value


def _header_text(value: str) -> str | Header:
    """ASCII as it is; anything else as RFC 2047 encoded words."""
    return value if value.isascii() else Header(value, "utf-8")


def _one_line(text: str) -> str:
    return re.sub(r"[\x00-\x1f\x7f]+", " ", text).strip()


_WIRE = policy.compat32.clone(linesep="\r\n")


class _WireGenerator(BytesGenerator):
    """compat32's generator, with one shortcut: it folds every field through email.header
    (over a third of the time of composing a mail), though most of ours are printable ASCII,
    which needs no encoding and folds at its spaces (RFC 5322 §2.2.3); those are written here."""

    def _write_headers(self, msg: Message) -> None:
        for name, value in msg.raw_items():
            self.write(_field(name, value))
        self.write("\r\n")


def _field(name: str, value: str | Header) -> str:
    """One field as it goes on the wire, folded, its CRLF at the end."""
    if isinstance(value, str) and _PLAIN.fullmatch(value):
        return _folded(name, value)
    # write() encodes back what fold_binary decoded (8-bit bytes as surrogates); compat32 folds
    # a Header too, though its stub says str
    folded = _WIRE.fold_binary(name, value)  # type: ignore[arg-type]
    return folded.decode("ascii", "surrogateescape")


# printable ASCII with single spaces inside, nothing at either end that folding would change
_PLAIN = re.compile(r"[!-~]+(?: [!-~]+)*")
_LINE = 78  # RFC 5322 §2.1.1: SHOULD be no more than 78 characters


def _folded(name: str, value: str) -> str:
    """`name: value`, lines broken before a space once they would pass 78 characters (a word
    longer than that stays whole: a line may be up to 998)."""
    line = f"{name}: {value}"
    if len(line) <= _LINE:
        return f"{line}\r\n"
    lines, current = [], f"{name}:"
    for word in value.split(" "):
        if len(current) + 1 + len(word) > _LINE and current.strip() and current != f"{name}:":
            lines.append(current)
            current = ""
        current = f"{current} {word}"
    lines.append(current)
    return "\r\n".join(lines) + "\r\n"


def as_bytes(message: Message) -> bytes:
    """The message as it goes on the wire (CRLF line ends): what is signed is what is sent."""
    out = io.BytesIO()
    _WireGenerator(out, mangle_from_=False, policy=_WIRE).flatten(message)
    return out.getvalue()
