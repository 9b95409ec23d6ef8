"""Step 10, SMTP to the relay (workers/transport.py makes it from GATEWAY_OUTBOUND_URL): one
kept-open connection per worker thread, or several (`lanes`) that a run of mails goes over side
by side, each reopened and tried again when the relay dropped it.
"""

from __future__ import annotations

import contextlib
import re
import smtplib
import socket
import ssl
import threading
from collections.abc import Iterable, Iterator

from workers.transport import (
    EndUnanswered,
    Mark,
    Outgoing,
    PermanentFailure,
    Sent,
    TemporaryFailure,
)

# RFC 5321 §4.5.3.2.6: a client waits 10 minutes for the reply to the final dot (the relay may
# be running its content checks); the other replies come within the connection's timeout
END_REPLY_TIMEOUT = 600.0


class SmtpTransport:
    """Kept-open SMTP connections, `lanes` per worker thread, each reopened when the relay
    drops it: `send` uses the first; `send_each` sends a run of mails over all of them side by
    side, so that the mails of a round are marked sent in one transaction, not one each."""

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
        lanes: int = 1,
    ) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.tls, self.context = tls, context or ssl.create_default_context()
        self.username, self.password = username, password
        self.lanes = max(1, lanes)
        self.local = threading.local()
        self.open: set[smtplib.SMTP] = set()  # every thread's connection, to close them at the end
        self.lock = threading.Lock()

    def send(self, data: bytes, sender: str, recipients: list[str]) -> None:
        for attempt in (1, 2):
            client = self._client(0)
            try:
                refused = client.sendmail(
                    sender, recipients, data, _options(client, sender, recipients)
                )
            except smtplib.SMTPServerDisconnected as exc:  # a kept-open connection timed out
                self._drop(0)
                if attempt == 2:
                    raise TemporaryFailure(f"relay disconnected: {exc}") from exc
                continue
            except smtplib.SMTPRecipientsRefused as exc:
                self._reset(0)
                codes = [code for code, _ in exc.recipients.values()]
                raise _failure(min(codes), str(exc.recipients)) from exc
            except smtplib.SMTPResponseException as exc:
                self._reset(0)
                error = exc.smtp_error
                text = error.decode(errors="replace") if isinstance(error, bytes) else str(error)
                raise _failure(exc.smtp_code, text) from exc
            except (OSError, smtplib.SMTPException) as exc:
                self._drop(0)
                raise self._lost(exc) from exc
            if refused:
                raise _failure(min(c for c, _ in refused.values()), str(refused))
            return

    def send_each(self, mails: list[Outgoing], mark: Mark) -> list[Sent]:
        """The mails in rounds of one a lane. In a round each lane is given its mail but the
        final dot; `mark` records the round's ready mails as sent in one go; then each marked
        one is ended, its end in one write with the lane's next mail's MAIL, RCPT and DATA
        (RFC 2920 §3.1: message content may begin a group of commands), and the replies read.

        A relay accepts a mail only at its final dot; a connection that ends before it leaves
        nothing delivered (RFC 5321 §4.1.1.4). Marked before its dot, a mail whose sender is
        killed is either marked and delivered or neither; only a kill in the instant between
        the round's mark and its dots' writes loses it. A mail not marked is not ended: its
        lane is dropped, and the relay drops the mail. A refusal, a lost connection or an
        exception in `mark` touches only the mails of its lane or of its round.
        """
        try:
            return self._rounds(mails, mark)
        except BaseException:  # e.g. a worker's time limit: no lane is left in a known state
            for lane in range(self.lanes):
                self._drop(lane)
            raise

    def _rounds(self, mails: list[Outgoing], mark: Mark) -> list[Sent]:
        results: list[Sent] = []
        ahead = [False] * self.lanes  # the lane's next MAIL, RCPT and DATA went with an end
        for first in range(0, len(mails), self.lanes):
            batch = mails[first : first + self.lanes]
            following = mails[first + self.lanes : first + 2 * self.lanes]
            # None: the lane's mail goes on. Every lane's envelope is read before any content
            # goes, so that no lane is in the middle of its data while another waits
            outcome: list[Sent | None] = [self._ready(n, m, ahead) for n, m in enumerate(batch)]
            for lane in self._going(outcome):
                outcome[lane] = self._content(lane, batch[lane])
            ready = self._going(outcome)
            if ready:
                self._mark_and_end(first, ready, following, mark, ahead, outcome)
            results += [result if result is not None else False for result in outcome]
        return results

    @staticmethod
    def _going(outcome: list[Sent | None]) -> list[int]:
        return [lane for lane, result in enumerate(outcome) if result is None]

    def _mark_and_end(
        self,
        first: int,
        ready: list[int],
        following: list[Outgoing],
        mark: Mark,
        ahead: list[bool],
        outcome: list[Sent | None],
    ) -> None:
        """The round's ready mails marked in one call, then each marked one ended."""
        try:
            marked = set(mark([first + lane for lane in ready]))
        except Exception as exc:  # not marked: the relay drops the unfinished mails
            for lane in ready:
                self._drop(lane)
                outcome[lane] = exc
            return
        for lane in ready:
            if first + lane in marked:
                nxt = following[lane] if lane < len(following) else None
                outcome[lane] = self._end(lane, nxt, ahead)
            else:  # someone else has it, or it was cancelled
                self._drop(lane)
                outcome[lane] = False
        for lane in self._going(outcome):
            outcome[lane] = self._ended(lane, ahead)

    def _ready(self, lane: int, mail: Outgoing, ahead: list[bool]) -> Exception | None:
        """The lane has accepted MAIL, RCPT and DATA for its mail of the round (read now when
        they went ahead); else the refusal or the loss of the relay, the mail's result."""
        try:
            if ahead[lane]:
                ahead[lane] = False
                self._begun(lane, mail)
            else:
                self._begin_data(lane, mail.sender, mail.recipients)
        except Exception as exc:  # refused, or the relay lost: this mail only
            return exc
        return None

    def _content(self, lane: int, mail: Outgoing) -> Exception | None:
        try:
            self._client(lane).send(_data_without_end(mail.data))
        except (OSError, smtplib.SMTPException) as exc:
            self._drop(lane)
            return self._lost(exc)
        return None

    def _end(self, lane: int, following: Outgoing | None, ahead: list[bool]) -> Exception | None:
        """The final dot, with the lane's next mail's envelope when it can go with it."""
        client = self._client(lane)
        envelope = _envelope_ahead(client, following)
        try:
            client.send(b".\r\n" + envelope)
        except (OSError, smtplib.SMTPException) as exc:  # some of the dot may have gone
            self._drop(lane)
            return self._lost(exc, EndUnanswered)
        ahead[lane] = bool(envelope)
        return None

    def _ended(self, lane: int, ahead: list[bool]) -> Sent:
        """The relay's reply to a mail's end."""
        client = self._client(lane)
        try:
            if client.sock is not None:
                client.sock.settimeout(END_REPLY_TIMEOUT)
            code, reply = client.getreply()
            if client.sock is not None:
                client.sock.settimeout(self.timeout)
        except (OSError, smtplib.SMTPException) as exc:
            self._drop(lane)
            ahead[lane] = False
            return self._lost(exc, EndUnanswered)
        if code != 250:
            return _failure(code, reply.decode(errors="replace"))
        return True

    def _lost(
        self, exc: BaseException, kind: type[TemporaryFailure] = TemporaryFailure
    ) -> TemporaryFailure:
        return kind(f"relay {self.host}:{self.port}: {exc}")

    def _begun(self, lane: int, mail: Outgoing) -> None:
        """The replies to MAIL, RCPT and DATA that went ahead: the lane is ready for content."""
        client = self._client(lane)
        try:
            replies = _replies(client, len(mail.recipients) + 2)
        except (OSError, smtplib.SMTPException) as exc:
            self._drop(lane)
            raise self._lost(exc) from exc
        self._accepted(lane, replies)

    def _accepted(self, lane: int, replies: Iterable[tuple[int, bytes]]) -> None:
        """Each reply to MAIL, RCPT and DATA as it comes; the first refusal raised as what it
        is, the connection reset for the next mail."""
        for code, reply in replies:
            if code not in (250, 251, 354):
                self._reset(lane)
                raise _failure(code, reply.decode(errors="replace"))

    def _begin_data(self, lane: int, sender: str, recipients: list[str]) -> None:
        """The lane has accepted MAIL, every RCPT and DATA (354), ready for content."""
        for attempt in (1, 2):
            client = self._client(lane)
            try:
                self._accepted(lane, _envelope(client, sender, recipients))
                return
            except smtplib.SMTPServerDisconnected as exc:  # a kept-open connection timed out
                self._drop(lane)
                if attempt == 2:
                    raise TemporaryFailure(f"relay disconnected: {exc}") from exc
            except (OSError, smtplib.SMTPException) as exc:
                self._drop(lane)
                raise self._lost(exc) from exc

    def _thread_lanes(self) -> list[smtplib.SMTP | None]:
        lanes: list[smtplib.SMTP | None] | None = getattr(self.local, "lanes", None)
        if lanes is None:
            lanes = self.local.lanes = [None] * self.lanes
        return lanes

    def _client(self, lane: int) -> smtplib.SMTP:
        lanes = self._thread_lanes()
        client = lanes[lane]
        if client is not None:
            return client
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
            # a mail's end is written on its own: without this, Nagle's algorithm holds it
            # back until the relay's delayed ACK (40 ms on Linux) for the data before it
            if client.sock is not None:
                client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except (OSError, smtplib.SMTPException) as exc:
            if client is not None:  # e.g. STARTTLS not offered, or the certificate refused
                client.close()
            raise TemporaryFailure(f"cannot reach relay {self.host}:{self.port}: {exc}") from exc
        lanes[lane] = client
        with self.lock:
            self.open.add(client)
        return client

    def _reset(self, lane: int) -> None:
        try:
            self._client(lane).rset()
        except (OSError, smtplib.SMTPException):
            self._drop(lane)

    def _drop(self, lane: int) -> None:
        lanes = self._thread_lanes()
        client, lanes[lane] = lanes[lane], None
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


def _data_without_end(data: bytes) -> bytes:
    """DATA's content with its dots doubled (RFC 5321 §4.5.2), ending in CRLF, without the
    final `.` line."""
    # most mails have no line that starts with a dot: no need to copy them through a regex
    dotted = data.startswith(b".") or b"\n." in data
    quoted = re.sub(rb"(?m)^\.", b"..", data) if dotted else data
    return quoted if quoted.endswith(b"\r\n") else quoted + b"\r\n"
