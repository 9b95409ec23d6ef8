"""The gateway under test: in-process (listener, poller, workers, sweep) or as a real subprocess."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import smtplib
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from sqlalchemy import event, func, select

from cli.serve import Services
from gateway.assembly import build
from gateway.core.runtime import Runtime, Sessions
from gateway.core.settings import Settings
from gateway.edges.imap import Poller
from gateway.storage import db
from gateway.storage.models import Delivery
from tests.support.services import free_port, port_open
from tests.support.sink import Received

INTAKE = "soc@securecall.example"
SR_ID = re.compile(r"\[(SR-[0-9A-Z]{4}-[0-9A-Z]{4})\]")
# A Wednesday, 10:00 in Berlin: inside Business Hours – Standard.
WEDNESDAY_MORNING = datetime(2026, 11, 18, 9, 0, tzinfo=UTC)


class OffsetClock:
    """Starts at a chosen instant and runs at the speed of real time; `advance` jumps ahead."""

    def __init__(self, start: datetime = WEDNESDAY_MORNING) -> None:
        self.offset = start - datetime.now(UTC)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, delta: timedelta) -> None:
        self.offset += delta


@dataclass
class SmtpReply:
    code: int
    text: str


def mail(
    sender: str = "alice@example.com",
    subject: str = "VPN tunnel to Frankfurt is down",
    body: str = "Hello,\n\nour VPN tunnel to Frankfurt dropped this morning.\n\nRegards\nAlice\n",
    *,
    to: str = INTAKE,
    message_id: str | None = "",
    in_reply_to: str | None = None,
    references: str | None = None,
    headers: dict[str, str] | None = None,
    name: str = "",
) -> bytes:
    """A plain mail as a client would send it. message_id="" makes one; None leaves it out."""
    lines = [
        f"From: {name} <{sender}>" if name else f"From: {sender}",
        f"To: SecureCall SOC <{to}>",
        f"Subject: {subject}",
        f"Date: {format_datetime(datetime.now(UTC))}",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
    ]
    if message_id is not None:
        lines.append(f"Message-ID: {message_id or make_msgid(domain=sender.split('@')[1])}")
    if in_reply_to:
        lines.append(f"In-Reply-To: {in_reply_to}")
    if references:
        lines.append(f"References: {references}")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    text = "\r\n".join(lines) + "\r\n\r\n" + body.replace("\n", "\r\n")
    return text.encode("utf-8")


def smtp_send(
    port: int,
    data: bytes,
    *,
    mail_from: str = "alice@example.com",
    rcpt: str = INTAKE,
    host: str = "127.0.0.1",
    size: int | None = None,
) -> SmtpReply:
    """One SMTP transaction; returns the first refusal, or the server's reply to the end of DATA."""
    with smtplib.SMTP(host, port, timeout=30) as client:
        client.ehlo("client.example.com")
        code, text = client.mail(mail_from, [f"SIZE={size}"] if size else [])
        if code != 250:
            return SmtpReply(code, text.decode())
        code, text = client.rcpt(rcpt)
        if code != 250:
            return SmtpReply(code, text.decode())
        code, text = client.data(data)
        return SmtpReply(code, text.decode())


@dataclass
class Gateway:
    """The whole gateway in this process, as `gateway run` starts it."""

    settings: Settings
    clock: Callable[[], datetime] = field(default_factory=OffsetClock)
    rt: Runtime | None = None
    services: Services | None = None

    def start(
        self, *, imap: bool = False, prepare: Callable[[Runtime], None] | None = None
    ) -> Gateway:
        """Build, load the test directory (and what `prepare` adds), then start the services."""
        self.rt = build(self.settings, clock=self.clock)
        populate(self.rt)
        if prepare is not None:
            prepare(self.rt)
        self.services = Services(self.rt, smtp=True, imap=imap, workers=True, sweep=True)
        self.services.start()
        return self

    def outbox_quiet(self) -> bool:
        """No Delivery waits to be sent now: each one written so far is sent, failed, or parked
        for a later retry. Mail the relay accepted is recorded as sent only after the relay
        answered, except a bulletin, marked just before its final dot (workers/bulk.py): so
        `Sink.settle` also waits until no session is in the middle of a mail's data."""
        return self.rt is None or outbox_quiet(self.rt.sessions, self.rt.now())

    @property
    def poller(self) -> Poller:
        """The running IMAP poller (started with `imap=True`)."""
        assert self.services is not None
        assert self.services.poller is not None
        return self.services.poller

    def stop(self) -> None:
        if self.services is not None:
            self.services.stop()
        if self.rt is not None:
            bind = self.rt.sessions.kw["bind"]
            bind.dispose()

    @property
    def runtime(self) -> Runtime:
        assert self.rt is not None
        return self.rt

    def send(self, data: bytes, **kwargs: Any) -> SmtpReply:
        return smtp_send(self.settings.smtp_port, data, **kwargs)


def settings_for(
    var_dir: Path, database_url: str, *, broker_url: str = "", sink_port: int, **overrides: Any
) -> Settings:
    values: dict[str, Any] = {
        "var_dir": var_dir,
        "database_url": database_url,
        "broker_url": broker_url,
        "smtp_port": free_port(),
        "web_port": free_port(),  # `gateway run` serves the web side too
        "outbound_url": f"smtp://127.0.0.1:{sink_port}?tls=none",  # the sink speaks no TLS
        "intake_addresses": (INTAKE,),
        "secret_key": "test-signing-key",
        "sweep_interval": 0.5,
        "worker_threads": 2,
        # a test's gateway stops in 2 x 10 ms, not 2 x 100 ms: a third off the time of the
        # tests that start one (alternate runs of 369 of them: 55-57 s against 38-39 s)
        "worker_poll_ms": 10,
        "smtp_workers": 4,
        "imap_poll_interval": 1.0,
        # Mail in most tests comes from loopback with no DNS behind it; the tests of sender
        # authentication set these (and domain policies) themselves.
        "auth_policy": "none",
        "soc_auth_policy": "none",
    }
    values.update(overrides)
    return Settings(**values)


def settings_env(settings: Settings) -> dict[str, str]:
    """The same settings as GATEWAY_* variables, for a gateway in a subprocess."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    for name, value in settings.model_dump(mode="json").items():
        secret = getattr(settings, name)
        if isinstance(secret, SecretStr):  # dumped as "**********"; the subprocess needs the key
            shown = secret.get_secret_value()
        else:
            shown = ",".join(value) if isinstance(value, list) else str(value)
        env[f"GATEWAY_{name.upper()}"] = shown
    env["GATEWAY_CONFIG"] = "/nonexistent/gateway.toml"
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Process:
    """A command as a real process, its output appended to `log`; SIGKILL or SIGTERM to end it."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.argv, self.env, self.log = argv, env, log
        self.proc: subprocess.Popen[bytes] | None = None
        self.out: Any = None

    @classmethod
    def gateway(cls, args: list[str], env: dict[str, str], log: Path) -> Process:
        """`gateway <args>` (the console script's module, with this interpreter)."""
        return cls([sys.executable, "-m", "cli", *args], env, log)

    def start(self, wait_port: int | None = None, timeout: float = 30.0) -> Process:
        self.out = self.log.open("ab")
        # A session of its own: SIGKILL reaches the process and every child it forked.
        self.proc = subprocess.Popen(
            self.argv,
            env=self.env,
            stdout=self.out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if wait_port is not None:
            deadline = time.monotonic() + timeout
            while not port_open("127.0.0.1", wait_port):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"did not start: {self.log.read_text()[-3000:]}")
                time.sleep(0.05)
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self._close()

    def pause(self) -> None:
        """SIGSTOP to the process and every child: nothing it does moves on until `resume`."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGCONT)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        self._close()

    def _close(self) -> None:
        if self.out is not None:
            self.out.close()
            self.out = None


def outbox_quiet(sessions: Any, now: datetime) -> bool:
    """No Delivery in this database waits to be sent at `now` (see `Gateway.outbox_quiet`)."""
    with sessions.begin() as session:
        waiting = session.scalar(
            select(func.count())
            .select_from(Delivery)
            .where(Delivery.status.in_(("pending", "sending")), Delivery.next_attempt_at <= now)
        )
    return not waiting


def eventually(check: Callable[[], Any], timeout: float = 15.0, interval: float = 0.05) -> Any:
    """Poll `check` until it returns something truthy; fail with its last value after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"still {value!r} after {timeout} s")
        time.sleep(interval)


@contextmanager
def database(url: str) -> Iterator[Sessions]:
    """Sessions on the database at `url`, its schema at HEAD; its connections closed after."""
    sessions = db.make_sessions(db.make_engine(url))
    db.prepare(sessions.kw["bind"])
    try:
        yield sessions
    finally:
        db.close(sessions)


@contextmanager
def failing(engine: Any, statement: str, error: BaseException) -> Iterator[list[str]]:
    """While inside, every SQL statement starting with `statement` raises `error`.

    Yields the statements it refused, so a test can see that they were tried.
    """
    refused: list[str] = []

    def fail(conn: Any, cursor: Any, sql: str, *args: Any) -> None:
        if sql.startswith(statement):
            refused.append(sql)
            raise error

    event.listen(engine, "before_cursor_execute", fail)
    try:
        yield refused
    finally:
        event.remove(engine, "before_cursor_execute", fail)


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def populate(rt: Runtime) -> None:
    """The directory the tests use: the demo customer, a second customer, SOC staff."""
    from gateway import directory
    from gateway.directory import demo

    with rt.sessions.begin() as session:
        demo.load(session, rt.now())
        other = directory.add_customer(
            session, "Other GmbH", rt.now(), timezone="Europe/Berlin", country="DE"
        )
        directory.add_contact(
            session, other, "otto@other.example", "Otto Other", rt.now(), language="de"
        )
        directory.add_staff(session, "lead@securecall.example", "Lee Lead", "team_leader")


def count(gateway: Gateway, model: Any, *where: Any) -> int:
    """Rows of `model` in the gateway's database that match `where`."""
    with gateway.runtime.sessions.begin() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def sr_id_of(received: Received) -> str:
    """The SR ID in the subject of a mail the gateway sent ("[SR-XXXX-XXXX] …")."""
    found = SR_ID.search(received.message["Subject"])
    assert found, received.message["Subject"]
    return found.group(1)
