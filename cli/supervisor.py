"""Several listener processes on one port: a supervisor starts them, restarts one that dies, and
stops them all on SIGTERM.

Each child is a `gateway` command of its own (a fresh interpreter: nothing of the parent's state
is forked) that binds the SMTP port with SO_REUSEPORT, so that the kernel spreads the
connections over the children and parsing and triage are not one interpreter lock's work. A
child says it listens by writing a byte to a pipe (`--ready-fd`); one that ends before it did,
at the first start, means the gateway cannot start, and the supervisor stops the others and
fails. Later a child that dies is started again (after 0.5 s, doubling up to 30 s while it
keeps failing); it rejoins the port while its siblings go on taking mail.
"""

from __future__ import annotations

import ctypes
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

log = logging.getLogger("gateway")

STOP_TIMEOUT = 60.0  # a child's drain has 15 s (cli/serve.py); past this it is killed
READY_TIMEOUT = 180.0
FIRST_BACKOFF, MAX_BACKOFF = 0.5, 30.0


def processes_for(setting: int) -> int:
    """The number of listener processes: the setting, or with 0 one per core this may use."""
    if setting > 0:
        return setting
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@dataclass
class Child:
    """One listener process: its command, the running process and its ready pipe."""

    name: str
    argv: list[str]
    proc: subprocess.Popen[bytes] | None = None
    ready_fd: int = -1  # the pipe's reading end while the child has not said it listens
    started_at: float = 0.0
    was_ready: bool = False
    backoff: float = FIRST_BACKOFF
    restart_at: float | None = None

    beside: bool = False  # started by a process with threads of its own (`start_beside`)

    def start(self) -> None:
        read, write = os.pipe()
        try:
            self.proc = subprocess.Popen(  # noqa: S603 - this interpreter and `-m cli`
                [*self.argv, "--ready-fd", str(write)],
                pass_fds=(write,),
                # a process with other threads must not run Python between fork and exec: a
                # child beside it asks for its parent's death signal itself (`end_with_parent`)
                preexec_fn=None if self.beside else end_with_parent,  # noqa: PLW1509
            )
        except BaseException:
            os.close(read)
            raise
        finally:
            os.close(write)
        self.ready_fd, self.started_at, self.restart_at = read, time.monotonic(), None
        log.info("process %s started (pid %s)", self.name, self.proc.pid)

    def read_ready(self) -> bool:
        """Read the pipe: True if the child listens; False if it ended before it did."""
        said = os.read(self.ready_fd, 1)
        os.close(self.ready_fd)
        self.ready_fd = -1
        if said:
            self.was_ready, self.backoff = True, FIRST_BACKOFF
        return bool(said)


def end_with_parent() -> None:
    # Linux: a child whose supervisor was killed gets SIGTERM and drains, rather than listening
    # on unsupervised (PR_SET_PDEATHSIG = 1). Elsewhere the children outlive a killed supervisor.
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


class Supervisor:
    """Runs `commands` (one child each) until SIGINT or SIGTERM; `run` returns the exit status."""

    def __init__(self, commands: list[tuple[str, list[str]]]) -> None:
        self.children = [Child(name, argv) for name, argv in commands]
        self.stopping = threading.Event()
        self.watcher: threading.Thread | None = None

    def run(self) -> int:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: self.stopping.set())
        try:
            for child in self.children:
                child.start()
            if not self._all_ready():
                return 1
            log.info("%d listener processes share the port", len(self.children))
            self._watch()
            return 0
        finally:
            self._stop_all()

    def start_beside(self) -> None:
        """Start the children from a process that goes on with work of its own (and its own
        signals): a thread watches them and starts again each that ends; `stop_beside` ends
        them. Nothing waits for them to be ready."""
        for child in self.children:
            child.beside = True
            child.start()
        watcher = threading.Thread(target=self._watch, name="beside", daemon=True)
        watcher.start()
        self.watcher = watcher

    def stop_beside(self) -> None:
        self.stopping.set()
        if self.watcher is not None:
            self.watcher.join(timeout=5)
        self._stop_all()

    def _all_ready(self) -> bool:
        deadline = time.monotonic() + READY_TIMEOUT
        waiting = list(self.children)
        while waiting and not self.stopping.is_set():
            if time.monotonic() > deadline:
                log.error("listener processes did not start within %.0f s", READY_TIMEOUT)
                return False
            for child in self._readable(waiting, timeout=0.2):
                waiting.remove(child)
                if not child.read_ready():
                    log.error("listener %s could not start", child.name)
                    return False
        return True

    def _watch(self) -> None:
        while not self.stopping.is_set():
            pending = [c for c in self.children if c.ready_fd >= 0]
            for child in self._readable(pending, timeout=0.2):
                if child.read_ready():
                    log.info("process %s is ready again", child.name)
            now = time.monotonic()
            for child in self.children:
                assert child.proc is not None
                if child.restart_at is None and child.proc.poll() is not None:
                    self._exited(child, now)
                if child.restart_at is not None and now >= child.restart_at:
                    self._restart(child, now)

    def _restart(self, child: Child, now: float) -> None:
        try:
            child.start()
        except OSError:  # no process could be made now: again after the backoff
            log.exception("process %s could not be started again", child.name)
            child.restart_at = now + child.backoff
            child.backoff = min(MAX_BACKOFF, child.backoff * 2)

    def _exited(self, child: Child, now: float) -> None:
        assert child.proc is not None
        if child.ready_fd >= 0:  # ended before it listened: its pipe says no more
            child.read_ready()
        log.warning(
            "process %s (pid %s) ended with status %s; starting it again in %.1f s",
            child.name,
            child.proc.pid,
            child.proc.returncode,
            child.backoff,
        )
        child.restart_at = now + child.backoff
        child.backoff = min(MAX_BACKOFF, child.backoff * 2)

    @staticmethod
    def _readable(children: list[Child], timeout: float) -> list[Child]:
        if not children:
            time.sleep(timeout)
            return []
        ready, _, _ = select.select([c.ready_fd for c in children], [], [], timeout)
        return [c for c in children if c.ready_fd in ready]

    def _stop_all(self) -> None:
        """SIGTERM to every child (each drains its sessions), then wait; kill what is left."""
        running = [c.proc for c in self.children if c.proc is not None and c.proc.poll() is None]
        for proc in running:
            proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for proc in running:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("process %s did not stop; killing it", proc.pid)
                proc.kill()
                proc.wait()
        for child in self.children:
            if child.ready_fd >= 0:
                os.close(child.ready_fd)
                child.ready_fd = -1
