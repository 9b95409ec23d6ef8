"""Long-running processes: the listener, the poller, in-process workers and the delivery sweep."""

from __future__ import annotations

import gc
import logging
import os
import signal
import socket
import threading
from dataclasses import dataclass, field
from typing import Any

import dramatiq

from gateway import admin, clock
from gateway.core.runtime import Runtime
from gateway.edges.imap import Poller
from gateway.edges.smtp import Listener
from gateway.edges.web import WebServer
from gateway.outbound.outbox import in_process, sweep
from gateway.storage import db
from gateway.sus.fanout import resume_stalled
from workers.actors import declare
from workers.mailer import Transport, make_transport
from workers.markdown_html import to_html
from workers.preview import preview
from workers.render import Renderer

log = logging.getLogger("gateway")


class ListenError(Exception):
    """The SMTP listener could not take its address."""


def check_listen(host: str, port: int) -> None:
    """Raise ListenError unless `host:port` can be bound now, as the listener will bind it.

    Run before anything is loaded, so that a busy port is the first and only thing said. Like
    asyncio's create_server (aiosmtpd's), every address of the host is bound with SO_REUSEADDR,
    IPv6 sockets IPv6-only; each socket is closed again at once.
    """
    try:
        found = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
        for family, kind, proto, _, address in found:
            with socket.socket(family, kind, proto) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.bind(address)
    except OSError as exc:
        raise ListenError(_cannot_listen(host, port, exc)) from exc


def _cannot_listen(host: str, port: int, exc: OSError) -> str:
    # asyncio's own message repeats the address; the errno's text alone says what is wrong.
    if exc.errno and not isinstance(exc, socket.gaierror):
        reason = os.strerror(exc.errno)
    else:
        reason = exc.strerror or str(exc)
    return f"cannot listen on {host}:{port}: {reason[:1].lower()}{reason[1:]}"


def web_server(rt: Runtime, host: str, port: int) -> WebServer:
    """The web side with the admin web mounted, its previews rendered as the workers render
    the mail (the gateway does not import the workers: they are handed in here)."""
    site = admin.mount(rt, admin.Renderings(markdown=to_html, bulletin=preview))
    return WebServer(rt, host, port, mounts=site.mounts, middleware=site.middleware)


@dataclass
class Services:
    """The parts one process runs; `start` and `stop` bring them up and down in order."""

    rt: Runtime
    smtp: bool = False
    imap: bool = False
    workers: bool = False
    sweep: bool = False
    clock: bool = False
    web: bool = False
    stopping: threading.Event = field(default_factory=threading.Event)
    listener: Listener | None = None
    web_server: WebServer | None = None
    poller: Poller | None = None
    worker: dramatiq.Worker | None = None
    transport: Transport | None = None
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        settings = self.rt.settings
        if self.workers:
            broker = self.rt.outbox.broker
            self.transport = make_transport(settings.outbound, settings.outbound_ca_file)
            declare(broker, self.rt, self.transport, Renderer())
            self.worker = dramatiq.Worker(
                broker, worker_threads=settings.worker_threads, worker_timeout=200
            )
            self.worker.start()
        if self.sweep:
            self._thread("sweep", self._sweep_loop)
        if self.clock:
            clock.prepare(self.rt)
            self._thread("clock", self._clock_loop)
        if self.imap and settings.imap_url:
            self.poller = Poller(self.rt, settings.imap_url, self.stopping)
            self._thread("imap", self.poller.run)
        if self.smtp:
            self.listener = Listener(self.rt)
            try:
                self.listener.start()
            except OSError as exc:  # the port is taken, or not ours to bind
                raise ListenError(
                    _cannot_listen(settings.smtp_host, settings.smtp_port, exc)
                ) from exc
            log.info(
                "listening on %s:%s for %s",
                settings.smtp_host,
                settings.smtp_port,
                ", ".join(settings.intake_addresses),
            )
        if self.web:
            self.web_server = web_server(self.rt, settings.web_host, settings.web_port)
            try:
                self.web_server.start()
            except OSError as exc:
                raise ListenError(
                    _cannot_listen(settings.web_host, settings.web_port, exc)
                ) from exc
            log.info("web on %s:%s", settings.web_host, settings.web_port)
        # What start-up built lives as long as the process: keep it out of the collector's full
        # passes, which otherwise paused every thread for 50-80 ms a few times a minute.
        gc.freeze()

    def stop(self) -> None:
        self.stopping.set()
        if self.listener is not None:
            self.listener.stop()
        if self.web_server is not None:
            self.web_server.stop()
        for thread in self.threads:
            thread.join(timeout=30)
        if self.worker is not None:
            self.worker.stop(timeout=10_000)
        if self.transport is not None:
            self.transport.close()
        self.rt.outbox.broker.close()
        db.close(self.rt.sessions)  # SQLite: the database file alone is now a complete copy

    def _thread(self, name: str, target: Any) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    def _sweep_loop(self) -> None:
        settings = self.rt.settings
        # An in-process broker lost its messages with the last process: enqueue every pending
        # Delivery at once instead of waiting for requeue_after.
        requeue_after = 0.0 if in_process(self.rt.outbox.broker) else settings.requeue_after
        while not self.stopping.is_set():
            try:
                sweep(
                    self.rt.sessions,
                    self.rt.outbox,
                    self.rt.now(),
                    requeue_after=requeue_after,
                    stale_after=settings.stale_sending_after,
                )
                resume_stalled(self.rt)  # bulletins left publishing (gateway/sus/fanout.py)
            except Exception:  # an edge: a database hiccup must not end the sweep
                log.exception("delivery sweep failed; trying again")
            requeue_after = settings.requeue_after
            self.stopping.wait(settings.sweep_interval)

    def _clock_loop(self) -> None:
        while not self.stopping.is_set():
            try:
                busy = clock.tick(self.rt) >= clock.BATCH
            except Exception:  # an edge: a database hiccup must not stop the clock
                log.exception("clock tick failed; trying again")
                busy = False
            if not busy:  # a full batch: more may be due at once
                self.stopping.wait(self.rt.settings.clock_interval)


def run_until_signal(services: Services) -> None:
    """Start, wait for SIGINT or SIGTERM, stop."""
    done = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: done.set())
    services.start()
    try:
        while not done.wait(1.0):
            pass
    finally:
        log.info("stopping")
        services.stop()
