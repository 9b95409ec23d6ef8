"""Long-running processes: the listener, the poller, in-process workers and the delivery sweep.

Intake comes up first, as soon as the mail it takes can be stored (the runtime is built: the
schema is current); each part's modules are imported as it starts, so that the poller watches
and the listener answers while the workers, the clock and the web side are still loading.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import socket
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import dramatiq

    from cli.supervisor import Supervisor
    from gateway.core.runtime import Runtime
    from gateway.edges.imap import Poller
    from gateway.edges.smtp import Listener
    from gateway.edges.web import WebServer
    from workers.puller import Puller
    from workers.transport import Transport

log = logging.getLogger("gateway")

DRAIN_GRACE = 15.0  # seconds the mails under way have to finish when the listener stops


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
    from gateway import admin
    from gateway.edges.web import WebServer
    from workers.markdown_html import to_html
    from workers.preview import preview

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
    pull: bool = False  # claim bulletin mail from the database and send it (`gateway bulk`)
    bulk_processes: int = 0  # `gateway bulk` processes started beside this one (embedded default)
    reuse_port: bool = False  # one of several listener processes on the port (cli/supervisor.py)
    stopping: threading.Event = field(default_factory=threading.Event)
    listener: Listener | None = None
    web_server: WebServer | None = None
    poller: Poller | None = None
    worker: dramatiq.Worker | None = None
    transport: Transport | None = None
    puller: Puller | None = None
    beside: Supervisor | None = None
    bulk_lock: threading.Lock = field(default_factory=threading.Lock)
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        """What can stop the start is checked before any mail is taken (the outbound transport,
        the DKIM key); then intake, then the workers, the sweep, the clock and the web side.

        Mail taken before the workers run waits in the broker's queue (in-process) or is
        handed to the broker's workers: it is stored and its Deliveries written either way.
        """
        transport = self._check_workers() if self.workers or self.pull else None
        if self.bulk_processes > 0:
            self.rt.outbox.pull_with(self._start_bulk_processes)
        if self.imap and self.rt.settings.imap_url:
            self._start_poller()
        if self.smtp:
            self._start_listener()
        if transport is not None and self.workers:
            self._start_workers(transport)
        if transport is not None and self.pull:
            self._start_puller(transport)
        if self.sweep:
            self._thread("sweep", self._sweep_loop)
        if self.clock:
            from gateway import clock

            clock.prepare(self.rt)
            self._thread("clock", self._clock_loop)
        if self.web:
            self._start_web()
        # What start-up built lives as long as the process: keep it out of the collector's full
        # passes, which otherwise paused every thread for 50-80 ms a few times a minute; the
        # collector was off while it was built (cli/__init__.py).
        gc.freeze()
        gc.enable()

    def _check_workers(self) -> Transport:
        """The workers' transport; a bad DKIM key raises here (declare reads it again)."""
        from workers.transport import make_transport

        settings = self.rt.settings
        self.transport = make_transport(
            settings.outbound, settings.outbound_ca_file, lanes=settings.bulk_connections
        )
        if settings.dkim_key_file:  # unset: no signer, and dkim and cryptography load later
            from workers.signing import Signer

            Signer.from_settings(settings)
        return self.transport

    def _start_poller(self) -> None:
        from gateway.edges.imap import Poller

        self.poller = Poller(self.rt, self.rt.settings.imap_url, self.stopping)
        self._thread("imap", self.poller.run)

    def _start_listener(self) -> None:
        from gateway.edges.smtp import Listener

        settings = self.rt.settings
        self.listener = Listener(self.rt, reuse_port=self.reuse_port)
        try:
            self.listener.start()
        except OSError as exc:  # the port is taken, or not ours to bind
            raise ListenError(_cannot_listen(settings.smtp_host, settings.smtp_port, exc)) from exc
        log.info(
            "listening on %s:%s for %s",
            settings.smtp_host,
            settings.smtp_port,
            ", ".join(settings.intake_addresses),
        )

    def _start_workers(self, transport: Transport) -> None:
        import dramatiq

        from workers.actors import declare
        from workers.render import Renderer

        settings, broker = self.rt.settings, self.rt.outbox.broker
        declare(broker, self.rt, transport, Renderer())
        self.worker = dramatiq.Worker(
            broker,
            worker_threads=settings.worker_threads,
            worker_timeout=settings.worker_poll_ms,
        )
        self.worker.start()

    def _start_puller(self, transport: Transport) -> None:
        from workers.puller import Puller
        from workers.render import Renderer
        from workers.signing import Signer

        settings = self.rt.settings
        signer = Signer.from_settings(settings)
        self.puller = Puller(
            self.rt, transport, Renderer(), signer, settings.worker_threads, self.stopping
        )
        self.puller.start()
        log.info("sending bulletin mail claimed from the database")

    def _start_bulk_processes(self) -> None:
        """`gateway bulk` children, started once a bulletin is drafted or goes out, each watched and
        started again when it ends; this process's fan-outs leave their mails for them to claim
        (workers/puller.py)."""
        import sys

        from cli.supervisor import Supervisor

        with self.bulk_lock:
            if self.beside is not None or self.stopping.is_set():
                return
            argv = [sys.executable, "-m", "cli", "bulk", "--parent-pid", str(os.getpid())]
            children = [(f"bulk {n + 1}", argv) for n in range(self.bulk_processes)]
            beside = Supervisor(children)
            try:
                beside.start_beside()
            except OSError:  # e.g. no process could be made: the next bulletin or sweep asks
                beside.stop_beside()  # again (Outbox.want_pullers says so in the log)
                raise
            self.beside = beside

    def _start_web(self) -> None:
        settings = self.rt.settings
        self.web_server = web_server(self.rt, settings.web_host, settings.web_port)
        try:
            self.web_server.start()
        except OSError as exc:
            raise ListenError(_cannot_listen(settings.web_host, settings.web_port, exc)) from exc
        log.info("web on %s:%s", settings.web_host, settings.web_port)

    def stop(self) -> None:
        self.stopping.set()
        if self.listener is not None:
            self.listener.drain(DRAIN_GRACE)
            self.listener.stop()
        if self.web_server is not None:
            self.web_server.stop()
        for thread in self.threads:
            thread.join(timeout=30)
        if self.puller is not None:
            self.puller.join(timeout=30)
        with self.bulk_lock:  # none is started from now on
            beside = self.beside
        if beside is not None:
            beside.stop_beside()
        if self.worker is not None:
            self.worker.stop(timeout=10_000)
        if self.transport is not None:
            self.transport.close()
        self.rt.outbox.close()
        from gateway.storage import db

        db.close(self.rt.sessions)  # SQLite: the database file alone is now a complete copy

    def _thread(self, name: str, target: Any) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    def _sweep_loop(self) -> None:
        from gateway.outbound.outbox import in_process, sweep
        from gateway.sus.fanout import resume_stalled

        settings = self.rt.settings
        # An in-process broker lost its messages with the last process: every pending Delivery
        # enqueued before this one started is enqueued again at once (500 a sweep), not after
        # requeue_after. Another listener process's in-process queue may hold some of them too:
        # a Delivery enqueued twice is still sent once (claimed, or marked, before it goes).
        lost_before = self.rt.now() if in_process(self.rt.outbox.broker) else None
        while not self.stopping.is_set():
            try:
                sweep(
                    self.rt.sessions,
                    self.rt.outbox,
                    self.rt.now(),
                    requeue_after=settings.requeue_after,
                    stale_after=settings.stale_sending_after,
                    lost_before=lost_before,
                )
                resume_stalled(self.rt)  # bulletins left publishing (gateway/sus/fanout.py)
            except Exception:  # an edge: a database hiccup must not end the sweep
                log.exception("delivery sweep failed; trying again")
            self.stopping.wait(settings.sweep_interval)

    def _clock_loop(self) -> None:
        from gateway import clock

        while not self.stopping.is_set():
            try:
                busy = clock.tick(self.rt) >= clock.BATCH
            except Exception:  # an edge: a database hiccup must not stop the clock
                log.exception("clock tick failed; trying again")
                busy = False
            if not busy:  # a full batch: more may be due at once
                self.stopping.wait(self.rt.settings.clock_interval)


def run_until_signal(services: Services, ready_fd: int | None = None) -> None:
    """Start, wait for SIGINT or SIGTERM, stop. A supervisor's child says on `ready_fd` that it
    has started (cli/supervisor.py)."""
    done = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: done.set())
    services.start()
    if ready_fd is not None:
        os.write(ready_fd, b"1")
        os.close(ready_fd)
    try:
        while not done.wait(1.0):
            pass
    finally:
        log.info("stopping")
        services.stop()
