"""Steps 1 and 2, the SMTP edge: an aiosmtpd handler; 250 after the commit, 451 when it may pass.

RCPT is accepted only for the intake addresses and the VERP return paths of bulletins (550
otherwise); aiosmtpd refuses a mail over the size limit with 552, already at MAIL FROM when the
client declares SIZE (RFC 1870). A failure that may pass (storage, DNS during sender
authentication) answers 451, so that the sender retries (R6.6); no mail is refused for the length
of its lines or the shape of its line ends. With a certificate STARTTLS is offered (RFC 3207,
R6.7), and RCPT for GATEWAY_SMTP_REQUIRE_TLS_FOR needs it first (530).
"""

from __future__ import annotations

import asyncio
import logging
import math
import ssl
import weakref
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import MISSING, SMTP, Envelope, Session, syntax
from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from gateway.core.runtime import Runtime
from gateway.core.settings import Settings
from gateway.intake.receipts import RawMail, StorageError, TemporaryAuthenticationFailure
from gateway.intake.receive import receive
from gateway.observe import metrics
from gateway.storage.committer import Committer
from gateway.storage.limits import count_sender, forget_senders
from gateway.sus.verp import is_verp

log = logging.getLogger(__name__)
_MARKS = metrics.COMMIT_GROUP.labels(work="bookkeeping")


class IntakeHandler:
    """aiosmtpd handler: `handle_RCPT` checks the address, `handle_DATA` stores the mail."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.addresses = rt.settings.accepted_addresses
        self.domain = rt.settings.domain
        self.tls_only = frozenset(a.lower() for a in rt.settings.smtp_require_tls_for)
        self.rate = SenderRate(rt, rt.settings.smtp_sender_rate, window=60.0)
        self.executor = ThreadPoolExecutor(rt.settings.smtp_workers, thread_name_prefix="intake")
        # MAIL FROM never waits behind the mails being stored: its count has threads of its own
        self.counting = ThreadPoolExecutor(2, thread_name_prefix="sender-rate")

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        """R6.1: a sender over its rate is asked to come back later (451), never refused."""
        peer = session.peer[0] if isinstance(session.peer, tuple) else ""
        sender = address.lower() or f"<>@{peer}"
        loop = asyncio.get_running_loop()
        wait = await loop.run_in_executor(self.counting, self.rate.admit, sender)
        if wait:
            metrics.refused(451)
            return f"451 4.7.1 Too many messages from {address or '<>'}; try again in {wait} s"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        # R4.4: bounces of bulletins come back to their VERP return path
        if address.lower() not in self.addresses and not is_verp(address, self.domain):
            metrics.refused(550)
            return "550 5.1.1 No such mailbox here"
        if address.lower() in self.tls_only and session.ssl is None:
            metrics.refused(530)
            return "530 5.7.0 Must issue a STARTTLS command first"  # RFC 3207 §4
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        if isinstance(content, str):
            content = content.encode("utf-8", "surrogateescape")
        peer = session.peer[0] if isinstance(session.peer, tuple) else None
        raw = RawMail(
            data=content,
            source="smtp",
            mail_from=envelope.mail_from or "",
            rcpt_tos=tuple(envelope.rcpt_tos),
            peer=peer,
            helo=session.host_name,
        )
        loop = asyncio.get_running_loop()
        try:
            receipt = await loop.run_in_executor(self.executor, receive, raw, self.rt)
        except TemporaryAuthenticationFailure:
            # RFC 7208 §8.6, RFC 6376 §6.1.2: a DNS failure is a reason to defer, not to refuse
            reply = "451 4.7.0 Temporary authentication failure (DNS); try again later"
        except StorageError:
            reply = "451 4.3.0 Temporary storage failure, please try again later"
        except Exception:  # an edge: log with what we know, make the sender retry
            log.exception("unexpected failure storing mail from %s", envelope.mail_from)
            reply = "451 4.3.0 Temporary failure, please try again later"
        else:
            return f"250 2.0.0 OK: stored as {receipt.stored_id}"
        metrics.refused(451)
        return reply

    def close(self) -> None:
        self.counting.shutdown(wait=True)
        self.executor.shutdown(wait=True)


class SenderRate:
    """R6.1: mails admitted per envelope sender and window, counted in the database, so that
    every listener of the gateway admits the same `limit` in all (storage/limits.py)."""

    PRUNE_EVERY = 1000  # admissions between two clean-ups of ended windows

    def __init__(self, rt: Runtime, limit: int, window: float) -> None:
        self.rt, self.limit, self.window = rt, limit, timedelta(seconds=window)
        self.admitted = 0

    def admit(self, sender: str) -> int:
        """0 if `sender` may send now (and it is counted), else the seconds to wait."""
        now = self.rt.now()
        self.admitted += 1
        prune = self.admitted % self.PRUNE_EVERY == 0

        def count(conn: Connection) -> datetime | None:
            if prune:
                forget_senders(conn, now - self.window)
            return count_sender(conn, sender, now, self.window, self.limit)

        try:
            # with the other counts and Delivery marks made meanwhile, not waiting for the disk
            committer = Committer.of(self.rt.sessions, durable=False, observe=_MARKS.observe)
            started = committer.write(count)
        except SQLAlchemyError as exc:  # the limit is a guard, not a gate: storage decides
            log.warning("sender rate of %s not counted: %s", sender, exc)
            return 0
        if started is None:
            return 0
        return max(1, math.ceil((started + self.window - now).total_seconds()))


class IntakeSMTP(SMTP):  # type: ignore[misc]
    """aiosmtpd's SMTP, reading DATA lines of any length up to the message size limit (R6.6).

    aiosmtpd refuses a DATA line over 1,000 bytes (RFC 5321 §4.5.3.1.6) with a permanent 500,
    which the sending MTA turns into a bounce; real mail has such lines (JSON notifications, long
    headers, HTML on one line, unwrapped base64) and MTAs such as Postfix accept them. The reader
    is therefore allowed lines up to the size limit. Command lines stay limited: aiosmtpd checks
    each against `command_size_limit` after reading it (500 beyond; the reader holds at most what
    it may hold of a DATA line meanwhile). Lines are what SMTP calls lines, ended by CRLF (RFC
    5321 §2.3.8): a bare CR or LF is content, kept as sent; the end of DATA is CRLF.CRLF only (no
    "SMTP smuggling" with <LF>.<LF>), and a dot is unstuffed only at the start of a CRLF line
    (§4.5.2).
    """

    def __init__(self, handler: Any, *, data_size_limit: int, **kwargs: Any) -> None:
        # Read by SMTP.__init__ for the StreamReader's limit, and by smtp_DATA for each line.
        self.line_length_limit = max(data_size_limit, SMTP.line_length_limit)
        super().__init__(handler, data_size_limit=data_size_limit, **kwargs)

    @syntax("DATA")  # type: ignore[untyped-decorator]
    async def smtp_DATA(self, arg: str) -> None:
        """aiosmtpd's DATA, read in blocks instead of line by line (see `read_content`)."""
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        content = await read_content(self._reader, self.data_size_limit)
        if content is None:
            await self.push("552 Error: Too much mail data")
            self._set_post_data_state()
            return
        self.envelope.content = self.envelope.original_content = content
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push("250 OK" if status is MISSING else status)

    async def push(self, status: str | bytes) -> None:
        # A DATA line beyond the reader's limit is longer than the message size limit: the mail
        # is too big, and RFC 1870 §6 asks for 552 whatever the shape of its lines.
        if isinstance(status, str) and status.startswith("500 Line too long"):
            status = "552 Error: Too much mail data"
        if isinstance(status, str) and status.startswith("552"):  # aiosmtpd's own size refusals
            metrics.refused(552)
        await super().push(status)


DATA_BLOCK = 256 * 1024  # bytes taken from the connection at a time in DATA


async def read_content(reader: asyncio.StreamReader, limit: int | None) -> bytes | None:
    """The content of DATA, unstuffed; None when it is over `limit` (read to its end anyway).

    aiosmtpd reads DATA one line per await, keeps each line twice, and its reader's buffer grows
    with a line: a 30 MB mail took 400,000 awaits, and a 30 MB base64 attachment three copies at
    once. Here the connection is read in blocks, each looked through for the end of DATA: CRLF.CRLF
    only (RFC 5321 §4.1.1.4; a bare LF never ends it); a dot is unstuffed only at the start of a
    CRLF line (§4.5.2). What the client sent after the end (RFC 2920 pipelining) is given back
    to the reader, for the next command.
    """
    kept: list[bytes] = []
    size, too_much = 0, False
    before, carry = b"\r\n", b""  # DATA's first line starts a line
    while True:
        block = await reader.read(DATA_BLOCK)
        if not block:
            raise asyncio.IncompleteReadError(b"", None)  # the client went away during DATA
        seen = before + carry + block
        end = seen.find(b"\r\n.\r\n")
        stop = end + 2 if end >= 0 else max(len(before), len(seen) - 4)
        piece = seen[len(before) : stop]  # the end of DATA may begin in the last four bytes
        size += len(piece)
        if not too_much and limit and size > limit:
            too_much, kept = True, []
        if not too_much:
            kept.append(unstuff(before, piece))
        if end >= 0:
            _give_back(reader, seen[end + 5 :])
            return None if too_much else b"".join(kept)
        before, carry = (before + piece)[-2:], seen[stop:]


def unstuff(before: bytes, piece: bytes) -> bytes:
    """RFC 5321 §4.5.2: the first dot of each line that starts with one is the sender's.
    `before` are the two bytes of the stream before `piece`."""
    joined = before + piece
    if b"\r\n." not in joined:
        return piece
    return joined.replace(b"\r\n.", b"\r\n")[len(before) :]


def _give_back(reader: asyncio.StreamReader, data: bytes) -> None:
    # StreamReader has no unread; its buffer is where the next readuntil looks first.
    if data:
        buffer: bytearray = reader._buffer  # type: ignore[attr-defined]
        buffer[0:0] = data


def smtp_options(settings: Settings) -> dict[str, Any]:
    """How each SMTP session of the listener behaves (aiosmtpd's `SMTP` keyword arguments)."""
    return {
        "data_size_limit": settings.max_message_size,
        "decode_data": False,
        "enable_SMTPUTF8": True,
        "ident": "SecureCall gateway",
        "timeout": 300,
        "tls_context": tls_context(settings),
    }


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The server side of STARTTLS, from GATEWAY_SMTP_TLS_CERT and _KEY; None without them.

    Clients are not asked for certificates: MTAs rarely have one, and the sender is proven by
    SPF, DKIM and DMARC instead (R6.4).
    """
    if not settings.smtp_tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2  # RFC 8996: no TLS 1.0 or 1.1
    context.load_cert_chain(settings.smtp_tls_cert, settings.smtp_tls_key)
    return context


class Listener(Controller):  # type: ignore[misc]
    """The listener on its own thread and event loop (aiosmtpd's Controller).

    With `reuse_port` its socket takes SO_REUSEPORT, so that several listener processes share one
    port and the kernel spreads the connections over them (cli/supervisor.py). `drain` is the
    graceful end: no more connections, the transactions under way finish, and every session is
    told 421 (RFC 5321 §3.8) once it is between two mails.
    """

    DRAIN_POLL = 0.05

    def __init__(self, rt: Runtime, *, reuse_port: bool = False, **kwargs: Any) -> None:
        self.intake = IntakeHandler(rt)
        self.reuse_port = reuse_port
        self.sessions: weakref.WeakSet[IntakeSMTP] = weakref.WeakSet()
        settings = rt.settings
        super().__init__(
            self.intake,
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            **smtp_options(settings),
            **kwargs,
        )

    def factory(self) -> IntakeSMTP:
        smtpd = IntakeSMTP(self.handler, **self.SMTP_kwargs)
        self.sessions.add(smtpd)
        return smtpd

    def _create_server(self) -> Any:
        return self.loop.create_server(
            self._factory_invoker,
            host=self.hostname,
            port=self.port,
            ssl=self.ssl_context,
            reuse_port=self.reuse_port or None,
        )

    def _trigger_server(self) -> None:
        # aiosmtpd connects to its own port to see the factory work; with SO_REUSEPORT that
        # connection may reach another process's socket, so the factory is called directly.
        async def invoke() -> None:
            self._factory_invoker()

        asyncio.run_coroutine_threadsafe(invoke(), self.loop).result(self.ready_timeout)

    def drain(self, grace: float) -> None:
        """Stop taking connections, let the mails under way finish (for up to `grace` seconds),
        and close every session with 421 once it has no transaction open."""
        if self._thread is None or self.server is None:
            return
        done = asyncio.run_coroutine_threadsafe(self._drain(grace), self.loop)
        try:
            done.result(grace + 5)
        except Exception:  # an edge: stopping goes on whatever the drain met
            log.exception("draining the SMTP sessions failed")

    async def _drain(self, grace: float) -> None:
        self.server.close()
        deadline = self.loop.time() + grace
        told: set[int] = set()
        while self.loop.time() < deadline:
            open_ = [s for s in list(self.sessions) if s.transport is not None]
            for smtpd in open_:
                # between MAIL and the reply to DATA the envelope has a sender; the reply is
                # written before the envelope is reset (aiosmtpd's smtp_DATA), so none is cut off
                envelope = smtpd.envelope
                if id(smtpd) not in told and (envelope is None or envelope.mail_from is None):
                    told.add(id(smtpd))
                    await smtpd.push("421 4.3.2 Service shutting down, try again later")
                    smtpd.transport.close()
            if all(id(s) in told for s in open_):
                return
            await asyncio.sleep(self.DRAIN_POLL)
        log.warning("stopping with SMTP transactions still under way")

    def stop(self, no_assert: bool = False) -> None:
        super().stop(no_assert=no_assert)
        self.intake.close()
