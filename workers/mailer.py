"""Step 10, compose the MIME message of a Delivery and hand it to the transport (SMTP, Maildir).

R6.7: the relay is spoken to over TLS, its certificate verified (the system's CAs, or
GATEWAY_OUTBOUND_CA_FILE): STARTTLS on smtp://, TLS from the start on smtps://; only
`smtp://…?tls=none` sends in the clear.
"""

from __future__ import annotations

import binascii
import contextlib
import io
import mailbox
import re
import secrets
import smtplib
import socket
import ssl
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from email import policy
from email.encoders import encode_base64
from email.generator import BytesGenerator
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.utils import formataddr, formatdate
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import unquote, urlsplit

from gateway.core.settings import Settings
from gateway.core.validators import tls_mode
from gateway.outbound.sending import Claimed, File

if TYPE_CHECKING:  # the renderer's modules (Jinja2, css-inline, markdown-it) are the workers'
    from workers.render import Rendered


@dataclass(frozen=True)
class Inline:
    """An image shown inside the HTML part (<img src="cid:…">, RFC 2392)."""

    cid: str
    filename: str
    data: bytes
    content_type: str = "image/png"


class TemporaryFailure(Exception):
    """Try again later: SMTP 4xx, connection refused or lost (RFC 5321 §4.2.1)."""


class PermanentFailure(Exception):
    """Never retried: SMTP 5xx, or a mail that cannot be composed."""


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
    headers: dict[str, str | Header | None] = {
        "From": formataddr((settings.gateway_name, settings.gateway_address), "utf-8"),
        "To": _address(delivery.recipient),
        "Subject": _header_text(_one_line(rendered.subject)),
        "Date": formatdate(usegmt=True),
        "Message-ID": delivery.message_id,
        "In-Reply-To": delivery.in_reply_to,
        "References": delivery.references,
        "Auto-Submitted": delivery.auto_submitted,
        "X-Auto-Response-Suppress": "All",  # asks Exchange not to answer with an OOF
        "X-Loop": settings.gateway_address,
    }
    for name, value in [*headers.items(), *_own_fields(delivery.headers, headers)]:
        if not value:
            continue
        if re.search(r"[\r\n]", str(value)):
            raise PermanentFailure(f"{name} would span lines: {value!r}")
        message[name] = value  # type: ignore[assignment]  # compat32 takes str or Header
    return message


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
    time of flattening a mail)."""
    return f"=_{secrets.token_hex(12)}"


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
            if isinstance(value, str) and _PLAIN.fullmatch(value):
                self.write(_folded(name, value))
            else:  # write() encodes back what fold_binary decoded (8-bit bytes as surrogates)
                self.write(_WIRE.fold_binary(name, value).decode("ascii", "surrogateescape"))
        self.write("\r\n")


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


class Transport(Protocol):
    def send(self, data: bytes, sender: str, recipients: list[str]) -> None: ...

    def send_once(
        self, data: bytes, sender: str, recipients: list[str], mark: Callable[[], bool]
    ) -> bool:
        """Send, calling `mark` (which records the mail as sent) after the relay has all of it
        but its end: False, and nothing delivered, when `mark` says someone else has it."""
        ...

    def close(self) -> None: ...


def _data_without_end(data: bytes) -> bytes:
    """DATA's content with its dots doubled (RFC 5321 §4.5.2), ending in CRLF, without the
    final `.` line."""
    quoted = re.sub(rb"(?m)^\.", b"..", data)
    return quoted if quoted.endswith(b"\r\n") else quoted + b"\r\n"


def make_transport(url: str, ca_file: str = "") -> Transport:
    """`maildir:PATH`, `smtp://[user:pass@]host:port[?tls=none]` or `smtps://…`; `ca_file`: the
    CAs to verify the relay's certificate with (else the system's)."""
    if url.startswith("maildir:"):
        return MaildirTransport(Path(url.removeprefix("maildir:")))
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError(f"GATEWAY_OUTBOUND_URL must be smtp://, smtps:// or maildir:, not {url!r}")
    return SmtpTransport(
        host=parts.hostname,
        port=parts.port or (465 if parts.scheme == "smtps" else 25),
        tls=tls_mode(url),
        context=ssl.create_default_context(cafile=ca_file or None),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


class MaildirTransport:
    """Writes each mail into a Maildir, so a newcomer can read what the gateway sent."""

    def __init__(self, path: Path) -> None:
        self.box = mailbox.Maildir(path, create=True)

    def send(self, data: bytes, sender: str, recipients: list[str]) -> None:
        self.box.add(data.replace(b"\r\n", b"\n"))  # a Maildir file has the system's line ends

    def send_once(
        self, data: bytes, sender: str, recipients: list[str], mark: Callable[[], bool]
    ) -> bool:
        if not mark():
            return False
        self.send(data, sender, recipients)
        return True

    def close(self) -> None:
        pass


class SmtpTransport:
    """One kept-open SMTP connection per worker thread, reopened when the relay drops it."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        tls: str = "starttls",  # implicit | starttls | none
        context: ssl.SSLContext | None = None,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.tls, self.context = tls, context or ssl.create_default_context()
        self.username, self.password = username, password
        self.local = threading.local()
        self.open: set[smtplib.SMTP] = set()  # every thread's connection, to close them at the end
        self.lock = threading.Lock()

    def send(self, data: bytes, sender: str, recipients: list[str]) -> None:
        for attempt in (1, 2):
            client = self._client()
            try:
                refused = client.sendmail(
                    sender, recipients, data, _options(client, sender, recipients)
                )
            except smtplib.SMTPServerDisconnected as exc:  # a kept-open connection timed out
                self._drop()
                if attempt == 2:
                    raise TemporaryFailure(f"relay disconnected: {exc}") from exc
                continue
            except smtplib.SMTPRecipientsRefused as exc:
                self._reset(client)
                codes = [code for code, _ in exc.recipients.values()]
                raise _failure(min(codes), str(exc.recipients)) from exc
            except smtplib.SMTPResponseException as exc:
                self._reset(client)
                error = exc.smtp_error
                text = error.decode(errors="replace") if isinstance(error, bytes) else str(error)
                raise _failure(exc.smtp_code, text) from exc
            except (OSError, smtplib.SMTPException) as exc:
                self._drop()
                raise TemporaryFailure(f"relay {self.host}:{self.port}: {exc}") from exc
            if refused:
                raise _failure(min(c for c, _ in refused.values()), str(refused))
            return

    def send_once(
        self, data: bytes, sender: str, recipients: list[str], mark: Callable[[], bool]
    ) -> bool:
        """MAIL, RCPT, DATA and the content; then `mark`; then the final dot.

        A relay accepts a mail only at its final dot; a connection that ends before it leaves
        nothing delivered (RFC 5321 §4.1.1.4). Marked before the dot, a mail whose sender is
        killed is either marked and delivered or neither; only a kill in the instant between
        the mark and the dot's write loses it. `mark` False: the connection is dropped.
        """
        data = _data_without_end(data)
        client = self._begin_data(sender, recipients)
        try:
            client.send(data)
        except (OSError, smtplib.SMTPException) as exc:
            self._drop()
            raise TemporaryFailure(f"relay {self.host}:{self.port}: {exc}") from exc
        if not mark():
            self._drop()  # someone else sent it, or it was cancelled: the relay drops this one
            return False
        try:
            client.send(b".\r\n")
            code, reply = client.getreply()
        except (OSError, smtplib.SMTPException) as exc:
            self._drop()
            raise TemporaryFailure(f"relay {self.host}:{self.port}: {exc}") from exc
        if code != 250:
            raise _failure(code, reply.decode(errors="replace"))
        return True

    def _begin_data(self, sender: str, recipients: list[str]) -> smtplib.SMTP:
        """A connection that has accepted MAIL, every RCPT and DATA (354), ready for content."""
        for attempt in (1, 2):
            client = self._client()
            try:
                for code, reply in _envelope(client, sender, recipients):
                    if code not in (250, 251, 354):
                        self._reset(client)
                        raise _failure(code, reply.decode(errors="replace"))
                return client
            except smtplib.SMTPServerDisconnected as exc:  # a kept-open connection timed out
                self._drop()
                if attempt == 2:
                    raise TemporaryFailure(f"relay disconnected: {exc}") from exc
            except (OSError, smtplib.SMTPException) as exc:
                self._drop()
                raise TemporaryFailure(f"relay {self.host}:{self.port}: {exc}") from exc
        raise TemporaryFailure("relay disconnected")  # not reached: the loop returns or raises

    def _client(self) -> smtplib.SMTP:
        client: smtplib.SMTP | None = getattr(self.local, "client", None)
        if client is not None:
            return client
        client = None
        try:
            if self.tls == "implicit":
                client = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout, context=self.context
                )
            else:
                client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
                if self.tls == "starttls":
                    # RFC 3207: refused when not offered; smtplib raises SMTPNotSupportedError
                    client.starttls(context=self.context)
            if self.username and self.password:
                client.login(self.username, self.password)
            # send_once writes a mail's end on its own: without this, Nagle's algorithm holds
            # it back until the relay's delayed ACK (40 ms on Linux) for the data before it
            if client.sock is not None:
                client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except (OSError, smtplib.SMTPException) as exc:
            if client is not None:  # e.g. STARTTLS not offered, or the certificate refused
                client.close()
            raise TemporaryFailure(f"cannot reach relay {self.host}:{self.port}: {exc}") from exc
        self.local.client = client
        with self.lock:
            self.open.add(client)
        return client

    def _reset(self, client: smtplib.SMTP) -> None:
        try:
            client.rset()
        except (OSError, smtplib.SMTPException):
            self._drop()

    def _drop(self) -> None:
        client = getattr(self.local, "client", None)
        self.local.client = None
        if client is not None:
            with self.lock:
                self.open.discard(client)
            with contextlib.suppress(OSError):
                client.close()

    def close(self) -> None:
        """End every thread's connection politely (QUIT); called when the workers stop."""
        with self.lock:
            clients, self.open = self.open, set()
        for client in clients:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                client.quit()
            with contextlib.suppress(OSError):
                client.close()


def _options(client: smtplib.SMTP, sender: str, recipients: list[str]) -> list[str]:
    """SMTPUTF8 (RFC 6531) for an address that is not ASCII, as smtplib's send_message does."""
    if "".join([sender, *recipients]).isascii():
        return []
    client.ehlo_or_helo_if_needed()
    if not client.has_extn("smtputf8"):
        raise PermanentFailure("the relay does not offer SMTPUTF8 for a non-ASCII address")
    return ["SMTPUTF8", "BODY=8BITMIME"]


def _failure(code: int, text: str) -> Exception:
    kind = PermanentFailure if code >= 500 else TemporaryFailure
    return kind(f"{code} {text}"[:2000])


def _envelope(
    client: smtplib.SMTP, sender: str, recipients: list[str]
) -> Iterator[tuple[int, bytes]]:
    """MAIL FROM, each RCPT TO, then DATA: each reply as it comes, until one refuses.

    To a relay that offers PIPELINING (RFC 2920) the three go in one write and their replies
    are read in order: one round trip instead of three. smtplib has no pipelining of its own.
    """
    client.ehlo_or_helo_if_needed()
    options = _options(client, sender, recipients)
    if not client.has_extn("pipelining"):
        yield client.mail(sender, options)
        for recipient in recipients:
            yield client.rcpt(recipient)
        yield client.docmd("DATA")
        return
    tail = "".join(f" {o}" for o in options)
    lines = [f"MAIL FROM:{smtplib.quoteaddr(sender)}{tail}"]
    lines += [f"RCPT TO:{smtplib.quoteaddr(r)}" for r in recipients]
    client.send(("\r\n".join([*lines, "DATA"]) + "\r\n").encode("utf-8" if options else "ascii"))
    replies = [client.getreply() for _ in range(len(lines) + 1)]
    if replies[-1][0] == 354 and any(code >= 400 for code, _ in replies[:-1]):
        # DATA was accepted though the mail has no sender or recipients: end it empty
        client.send(b".\r\n")
        client.getreply()
    yield from replies
