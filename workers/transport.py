"""Step 10, second room: transport a composed mail to the relay (SMTP, one kept-open connection
per worker thread, reopened and tried again when the relay dropped it) or into a Maildir.

R6.7: the relay is spoken to over TLS, its certificate verified (the system's CAs, or
GATEWAY_OUTBOUND_CA_FILE): STARTTLS on smtp://, TLS from the start on smtps://; only
`smtp://…?tls=none` sends in the clear.
"""

from __future__ import annotations

import contextlib
import mailbox
import re
import smtplib
import socket
import ssl
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

from gateway.core.validators import tls_mode


class TemporaryFailure(Exception):
    """Try again later: SMTP 4xx, connection refused or lost (RFC 5321 §4.2.1)."""


class PermanentFailure(Exception):
    """Never retried: SMTP 5xx, or a mail that cannot be composed."""


@dataclass(frozen=True)
class Outgoing:
    """One mail of a run sent by `send_each`: `mark` as for `send_once`."""

    data: bytes
    sender: str
    recipients: list[str]
    mark: Callable[[], bool]


# What `send_each` says of each mail: True sent, False not sent because `mark` said someone
# else has it, an exception for a failure (TemporaryFailure, PermanentFailure, or unforeseen)
Sent = bool | Exception


class Transport(Protocol):
    def send(self, data: bytes, sender: str, recipients: list[str]) -> None: ...

    def send_once(
        self, data: bytes, sender: str, recipients: list[str], mark: Callable[[], bool]
    ) -> bool:
        """Send, calling `mark` (which records the mail as sent) after the relay has all of it
        but its end: False, and nothing delivered, when `mark` says someone else has it."""
        ...

    def send_each(self, mails: list[Outgoing]) -> list[Sent]:
        """Each of `mails` as `send_once` would send it, in order; what became of each."""
        ...

    def close(self) -> None: ...


def _one_by_one(transport: Transport, mails: list[Outgoing]) -> list[Sent]:
    results: list[Sent] = []
    for mail in mails:
        try:
            results.append(transport.send_once(mail.data, mail.sender, mail.recipients, mail.mark))
        except Exception as exc:  # the caller tells a failure from another
            results.append(exc)
    return results


def _data_without_end(data: bytes) -> bytes:
    """DATA's content with its dots doubled (RFC 5321 §4.5.2), ending in CRLF, without the
    final `.` line."""
    # most mails have no line that starts with a dot: no need to copy them through a regex
    dotted = data.startswith(b".") or b"\n." in data
    quoted = re.sub(rb"(?m)^\.", b"..", data) if dotted else data
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

    def send_each(self, mails: list[Outgoing]) -> list[Sent]:
        return _one_by_one(self, mails)

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
        (result,) = self.send_each([Outgoing(data, sender, recipients, mark)])
        if isinstance(result, Exception):
            raise result
        return result

    def send_each(self, mails: list[Outgoing]) -> list[Sent]:
        """As `send_once` for each, with one round trip a mail instead of two: a mail's final
        dot goes in one write with the next mail's MAIL, RCPT and DATA, and their replies are
        read together (RFC 2920 §3.1: message content may begin a group of commands). Each is
        still marked after the relay has all of it but its end, and ended right after."""
        results: list[Sent] = []
        ahead = False  # this mail's MAIL, RCPT and DATA went with the last one's end
        for n, mail in enumerate(mails):
            try:
                if ahead:
                    client = self._begun(mail)
                else:
                    client = self._begin_data(mail.sender, mail.recipients)
            except Exception as exc:  # refused, or the relay lost: this mail only
                results.append(exc)
                ahead = False
                continue
            following = mails[n + 1] if n + 1 < len(mails) else None
            result, ahead = self._content_and_end(client, mail, following)
            results.append(result)
        return results

    def _begun(self, mail: Outgoing) -> smtplib.SMTP:
        """The replies to MAIL, RCPT and DATA that went ahead: a connection ready for content."""
        client = self._client()
        try:
            replies = _replies(client, len(mail.recipients) + 2)
        except (OSError, smtplib.SMTPException) as exc:
            self._drop()
            raise TemporaryFailure(f"relay {self.host}:{self.port}: {exc}") from exc
        self._accepted(client, replies)
        return client

    def _accepted(self, client: smtplib.SMTP, replies: Iterable[tuple[int, bytes]]) -> None:
        """Each reply to MAIL, RCPT and DATA as it comes; the first refusal raised as what it
        is, the connection reset for the next mail."""
        for code, reply in replies:
            if code not in (250, 251, 354):
                self._reset(client)
                raise _failure(code, reply.decode(errors="replace"))

    def _content_and_end(
        self, client: smtplib.SMTP, mail: Outgoing, following: Outgoing | None
    ) -> tuple[Sent, bool]:
        """The content, the mark, the end (and the next mail's envelope when it can go with
        it): what became of the mail, and whether the next one's envelope went ahead."""
        try:
            client.send(_data_without_end(mail.data))
        except (OSError, smtplib.SMTPException) as exc:
            self._drop()
            return TemporaryFailure(f"relay {self.host}:{self.port}: {exc}"), False
        try:
            marked = mail.mark()
        except Exception as exc:  # not marked: the relay drops the unfinished mail
            self._drop()
            return exc, False
        if not marked:
            self._drop()  # someone else sent it, or it was cancelled: the relay drops this one
            return False, False
        ahead = _envelope_ahead(client, following)
        try:
            client.send(b".\r\n" + ahead)
            code, reply = client.getreply()
        except (OSError, smtplib.SMTPException) as exc:
            self._drop()
            return TemporaryFailure(f"relay {self.host}:{self.port}: {exc}"), False
        if code != 250:
            return _failure(code, reply.decode(errors="replace")), bool(ahead)
        return True, bool(ahead)

    def _begin_data(self, sender: str, recipients: list[str]) -> smtplib.SMTP:
        """A connection that has accepted MAIL, every RCPT and DATA (354), ready for content."""
        for attempt in (1, 2):
            client = self._client()
            try:
                self._accepted(client, _envelope(client, sender, recipients))
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
    if _ascii_envelope(sender, recipients):
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
    client.send(_envelope_lines(sender, recipients, options))
    yield from _replies(client, len(recipients) + 2)


def _envelope_ahead(client: smtplib.SMTP, mail: Outgoing | None) -> bytes:
    """`mail`'s MAIL, RCPT and DATA, to go with the last mail's end; nothing when there is no
    next mail, the relay offers no PIPELINING, or an address needs SMTPUTF8 (that mail takes
    the usual way, which checks the relay offers it)."""
    if mail is None or not client.has_extn("pipelining"):
        return b""
    if not _ascii_envelope(mail.sender, mail.recipients):
        return b""
    return _envelope_lines(mail.sender, mail.recipients, [])


def _ascii_envelope(sender: str, recipients: list[str]) -> bool:
    return "".join([sender, *recipients]).isascii()


def _envelope_lines(sender: str, recipients: list[str], options: list[str]) -> bytes:
    tail = "".join(f" {o}" for o in options)
    lines = [f"MAIL FROM:{_path(sender)}{tail}"]
    lines += [f"RCPT TO:{_path(r)}" for r in recipients]
    return ("\r\n".join([*lines, "DATA"]) + "\r\n").encode("utf-8" if options else "ascii")


def _replies(client: smtplib.SMTP, count: int) -> list[tuple[int, bytes]]:
    """The replies to a pipelined MAIL, RCPT… and DATA, in order."""
    replies = [client.getreply() for _ in range(count)]
    if replies[-1][0] == 354 and any(code >= 400 for code, _ in replies[:-1]):
        # DATA was accepted though the mail has no sender or recipients: end it empty
        client.send(b".\r\n")
        client.getreply()
    return replies


# local@domain with nothing that RFC 5322 address parsing would change (no quotes, comments,
# brackets, spaces): its path is the address in angle brackets
_BARE_ADDRESS = re.compile(r"[^\s<>()\[\]\\,;:\"@]+@[^\s<>()\[\]\\,;:\"@]+")


def _path(address: str) -> str:
    """smtplib.quoteaddr's `<address>` (RFC 5321 §4.1.2), without its parsing (email.utils,
    a fifth of the time of sending a bulletin's mail) for an address that needs none."""
    return f"<{address}>" if _BARE_ADDRESS.fullmatch(address) else smtplib.quoteaddr(address)
