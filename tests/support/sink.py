"""A real SMTP server (aiosmtpd) standing in for the relay: it keeps every mail it is given."""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from functools import cached_property
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    at: float
    tls: bool = False  # given after STARTTLS

    @cached_property
    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.data, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed

    @property
    def text(self) -> str:
        body = self.message.get_body(("plain",))
        return body.get_content() if body is not None else ""

    @property
    def html(self) -> str:
        body = self.message.get_body(("html",))
        return body.get_content() if body is not None else ""


class _Handler:
    def __init__(self, sink: Sink) -> None:
        self.sink = sink

    async def handle_RCPT(self, server, session, envelope, address, options):
        code = self.sink.rcpt_reply(address)
        if code:
            return code
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.sink.add(
            Received(
                envelope.mail_from,
                tuple(envelope.rcpt_tos),
                envelope.original_content,
                time.monotonic(),
                tls=session.ssl is not None,
            )
        )
        return "250 OK"


class _CountingSMTP(SMTP):  # type: ignore[misc]
    """aiosmtpd's SMTP, counting the sessions in the middle of a mail's data (354 given, no final
    dot yet): a bulletin is marked sent before the relay has its final dot (workers/bulk.py)."""

    def __init__(self, sink: Sink, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sink = sink

    async def smtp_DATA(self, arg: str) -> None:
        with self.sink._cond:
            self.sink.in_data += 1
        try:
            await super().smtp_DATA(arg)
        finally:
            with self.sink._cond:
                self.sink.in_data -= 1
                self.sink._cond.notify_all()


class _Controller(Controller):  # type: ignore[misc]
    def __init__(self, sink: Sink, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sink = sink

    def factory(self) -> SMTP:
        return _CountingSMTP(self.sink, self.handler, **self.SMTP_kwargs)


class Sink:
    """Start with `start()`; `wait_for(n)` blocks until n mails arrived. With `tls_context` it
    offers STARTTLS (and requires it: a relay that would take mail in the clear is not one)."""

    def __init__(self, port: int, tls_context: ssl.SSLContext | None = None) -> None:
        self.port = port
        self.mails: list[Received] = []
        self.quiet: list[Callable[[], bool]] = []  # see `watch`
        self.refuse: dict[str, str] = {}  # recipient -> SMTP reply, to make the relay say 4xx/5xx
        self.in_data = 0  # sessions between 354 and their final dot (_CountingSMTP)
        self._cond = threading.Condition()
        self._controller = _Controller(
            self,
            _Handler(self),
            hostname="127.0.0.1",
            port=port,
            tls_context=tls_context,
            require_starttls=tls_context is not None,
        )

    def rcpt_reply(self, address: str) -> str | None:
        return self.refuse.get(address.lower())

    def add(self, received: Received) -> None:
        with self._cond:
            self.mails.append(received)
            self._cond.notify_all()

    def start(self) -> Sink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def wait_for(self, count: int, timeout: float = 15.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.mails) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"expected {count} mails at the sink, got {len(self.mails)}"
                    )
                self._cond.wait(left)
            return list(self.mails)

    def wait_to(self, address: str, count: int = 1, timeout: float = 15.0) -> list[Received]:
        """Block until `count` mails for `address` arrived; returns those."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._to(address)) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"expected {count} mails to {address}, got {len(self._to(address))}"
                    )
                self._cond.wait(left)
            return self._to(address)

    def wait_until(
        self, condition: Callable[[list[Received]], bool], timeout: float = 15.0
    ) -> list[Received]:
        """Block until `condition(mails received)` holds; returns the mails."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not condition(self.mails):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"condition not met with {len(self.mails)} mails")
                self._cond.wait(left)
            return list(self.mails)

    def watch(self, quiet: Callable[[], bool]) -> None:
        """`settle` waits until `quiet()` holds: a gateway whose outbox has nothing left to send."""
        self.quiet.append(quiet)

    def settle_to(self, address: str, timeout: float = 30.0) -> list[Received]:
        """Once the watched gateways have sent all they had to send: the mails for `address`."""
        self.settle(timeout)
        return self.to(address)

    def _to(self, address: str) -> list[Received]:
        return [m for m in self.mails if address.lower() in (r.lower() for r in m.rcpt_tos)]

    def to(self, address: str) -> list[Received]:
        with self._cond:
            return self._to(address)

    def settle(self, timeout: float = 30.0) -> list[Received]:
        """Once the watched gateways have sent all they had to send: every mail received.

        What a test then does not find was not sent, rather than not sent yet."""
        assert self.quiet, "settle needs a gateway to watch (Sink.watch)"
        deadline = time.monotonic() + timeout
        # a mail marked sent may still be on its way: a bulletin is marked before its final dot
        while not all(quiet() for quiet in self.quiet) or self.in_data:
            if time.monotonic() > deadline:
                raise AssertionError(f"the outbox still had mail to send after {timeout} s")
            with self._cond:
                self._cond.wait(0.05)  # woken early by each mail that arrives
        with self._cond:
            return list(self.mails)
