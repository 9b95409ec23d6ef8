"""Long-running processes: the listener, the poller, in-process workers and the delivery sweep."""

from __future__ import annotations

import gc
import logging
import signal
import threading
from dataclasses import dataclass, field
from typing import Any

import dramatiq

from gateway import clock
from gateway.imap import Poller
from gateway.outbox import in_process, sweep
from gateway.runtime import Runtime
from gateway.smtp import Listener
from workers.actors import declare
from workers.mailer import Transport, make_transport
from workers.render import Renderer

log = logging.getLogger("gateway")


class ListenError(Exception):
    """The SMTP listener could not take its address."""


@dataclass
class Services:
    """The parts one process runs; `start` and `stop` bring them up and down in order."""

    rt: Runtime
    smtp: bool = False
    imap: bool = False
    workers: bool = False
    sweep: bool = False
    clock: bool = False
    stopping: threading.Event = field(default_factory=threading.Event)
    listener: Listener | None = None
    poller: Poller | None = None
    worker: dramatiq.Worker | None = None
    transport: Transport | None = None
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        settings = self.rt.settings
        if self.workers:
            broker = self.rt.outbox.broker
            self.transport = make_transport(settings.outbound)
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
                    f"cannot listen on {settings.smtp_host}:{settings.smtp_port}: {exc}"
                ) from exc
            log.info(
                "listening on %s:%s for %s",
                settings.smtp_host,
                settings.smtp_port,
                ", ".join(settings.intake_addresses),
            )
        # What start-up built lives as long as the process: keep it out of the collector's full
        # passes, which otherwise paused every thread for 50-80 ms a few times a minute.
        gc.freeze()

    def stop(self) -> None:
        self.stopping.set()
        if self.listener is not None:
            self.listener.stop()
        for thread in self.threads:
            thread.join(timeout=30)
        if self.worker is not None:
            self.worker.stop(timeout=10_000)
        if self.transport is not None:
            self.transport.close()
        self.rt.outbox.broker.close()

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
