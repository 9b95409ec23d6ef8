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
import ssl
import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from gateway.core.runtime import Runtime
from gateway.core.settings import Settings
from gateway.edges.sender_rate import SenderRate
from gateway.edges.smtp_data import IntakeSMTP
from gateway.intake.receipts import RawMail, StorageError, TemporaryAuthenticationFailure
from gateway.intake.receive import receive
from gateway.observe import metrics
from gateway.sus.verp import is_verp

log = logging.getLogger(__name__)


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
