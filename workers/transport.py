"""Step 10, second room: transport a composed mail to the relay or into a Maildir. This module
names what every transport says of a mail (sent, temporary or permanent failure) and picks the
transport a URL asks for; SMTP itself (kept-open connections, several mails side by side) is
workers/smtp_relay.py.

R6.7: the relay is spoken to over TLS, its certificate verified (the system's CAs, or
GATEWAY_OUTBOUND_CA_FILE): STARTTLS on smtp://, TLS from the start on smtps://; only
`smtp://…?tls=none` sends in the clear.
"""

from __future__ import annotations

import mailbox
import ssl
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

from gateway.core.validators import tls_mode


class TemporaryFailure(Exception):
    """Try again later: SMTP 4xx, connection refused or lost (RFC 5321 §4.2.1)."""


class EndUnanswered(TemporaryFailure):
    """The connection was lost with a mail's final dot written or being written and no reply
    read: the relay may have accepted it. A mail marked sent before its end stays sent (at most
    once); any other is tried again."""


class PermanentFailure(Exception):
    """Never retried: SMTP 5xx, or a mail that cannot be composed."""


@dataclass(frozen=True)
class Outgoing:
    """One mail of a run sent by `send_each`."""

    data: bytes
    sender: str
    recipients: list[str]


# What `send_each` says of each mail: True sent, False not sent because `mark` did not mark it
# (someone else has it), an exception for a failure (TemporaryFailure, PermanentFailure, or
# unforeseen)
Sent = bool | Exception
# Given the positions (in the run) of the mails the relay has all of but their end, records
# them as sent in one go; returns the positions it marked
Mark = Callable[[list[int]], Collection[int]]


class Transport(Protocol):
    def send(self, data: bytes, sender: str, recipients: list[str]) -> None: ...

    def send_each(self, mails: list[Outgoing], mark: Mark) -> list[Sent]:
        """Each of `mails` sent at most once: `mark` is called with those the relay has all of
        but their end, and only those it marked are ended (a relay accepts a mail only at its
        end, RFC 5321 §4.1.1.4); what became of each, in order."""
        ...

    def close(self) -> None: ...


def send_once(
    transport: Transport, data: bytes, sender: str, recipients: list[str], mark: Callable[[], bool]
) -> bool:
    """One mail as `send_each` sends it: `mark` called before its end; False, and nothing
    delivered, when `mark` says someone else has it. A failure is raised."""
    (result,) = transport.send_each(
        [Outgoing(data, sender, recipients)], lambda ready: ready if mark() else []
    )
    if isinstance(result, Exception):
        raise result
    return result


def make_transport(url: str, ca_file: str = "", lanes: int = 1) -> Transport:
    """`maildir:PATH`, `smtp://[user:pass@]host:port[?tls=none]` or `smtps://…`; `ca_file`: the
    CAs to verify the relay's certificate with (else the system's); `lanes`: the connections
    each thread sends a run of mails over side by side (SmtpTransport)."""
    if url.startswith("maildir:"):
        return MaildirTransport(Path(url.removeprefix("maildir:")))
    from workers.smtp_relay import SmtpTransport  # here: smtp_relay imports this module

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
        lanes=lanes,
    )


class MaildirTransport:
    """Writes each mail into a Maildir, so a newcomer can read what the gateway sent."""

    def __init__(self, path: Path) -> None:
        self.box = mailbox.Maildir(path, create=True)

    def send(self, data: bytes, sender: str, recipients: list[str]) -> None:
        self.box.add(data.replace(b"\r\n", b"\n"))  # a Maildir file has the system's line ends

    def send_each(self, mails: list[Outgoing], mark: Mark) -> list[Sent]:
        try:
            marked = set(mark(list(range(len(mails)))))
        except Exception as exc:  # the caller tells a failure from another
            return [exc] * len(mails)
        results: list[Sent] = []
        for n, mail in enumerate(mails):
            if n not in marked:
                results.append(False)
                continue
            try:
                self.send(mail.data, mail.sender, mail.recipients)
                results.append(True)
            except Exception as exc:
                results.append(exc)
        return results

    def close(self) -> None:
        pass
