"""Crash safety, proven (R6.2): 1,000 mails while the gateway and its workers are killed (SIGKILL)
and restarted at random moments, and the broker stopped for a while. At the end every mail is
stored exactly once and acknowledged; acknowledgements sent twice are counted and bounded.
"""

from __future__ import annotations

import contextlib
import queue
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from gateway.storage.db import make_engine, make_sessions
from gateway.storage.models import ServiceRequest, StoredMail
from tests.support.harness import Process, mail, settings_env, settings_for, smtp_send
from tests.support.services import free_port
from tests.support.sink import Received, Sink

MAILS = 1000
SENDERS = 4
WORKER_THREADS = 4
ALICE = "alice@example.com"


KILLS = 4  # one every MAILS // (KILLS + 1) mails answered 250
OUTAGE = (100, 250)  # the broker is away from the 100th mail answered to the 250th


class Progress:
    """The mails answered 250 so far; other threads wait for a number of them."""

    def __init__(self) -> None:
        self.accepted: set[str] = set()
        self._cond = threading.Condition()

    def add(self, message_id: str) -> None:
        with self._cond:
            self.accepted.add(message_id)
            self._cond.notify_all()

    def wait_for(self, count: int, deadline: float) -> bool:
        """True once `count` mails were answered 250; False if `deadline` came first."""
        with self._cond:
            while len(self.accepted) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True


class Chaos:
    """Kills one of the processes with SIGKILL each time another share of the mails has been
    answered, and restarts it after a short random pause: the kills follow the work, however
    fast or slow the machine is."""

    def __init__(
        self,
        processes: dict[str, Process],
        wait_port: int | None,
        progress: Progress,
        deadline: float,
        seed: int,
    ) -> None:
        self.processes, self.wait_port = processes, wait_port
        self.progress, self.deadline = progress, deadline
        self.random = random.Random(seed)
        self.kills: Counter[str] = Counter()
        self.errors: list[str] = []
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        every = MAILS // (KILLS + 1)
        try:
            for n in range(1, KILLS + 1):
                if not self.progress.wait_for(every * n, self.deadline):
                    return
                name = self.random.choice(sorted(self.processes))
                process = self.processes[name]
                process.kill()
                self.kills[name] += 1
                time.sleep(self.random.uniform(0.1, 1.0))  # down for a moment, as after a crash
                process.start(wait_port=self.wait_port if name == "gateway" else None, timeout=60)
        except Exception as exc:  # reported by the test, which then fails
            self.errors.append(repr(exc))


def send_all(port: int, ids: list[str], progress: Progress, deadline: float) -> dict[str, int]:
    """Every mail until it got its 250, retried like an MTA (on refusals and broken connections).

    Returns the attempts per mail; the mails that got their 250 are in `progress`."""
    work: queue.Queue[str] = queue.Queue()
    for message_id in ids:
        work.put(message_id)
    tries: Counter[str] = Counter()

    def sender() -> None:
        while time.monotonic() < deadline:
            try:
                message_id = work.get_nowait()
            except queue.Empty:
                return
            while time.monotonic() < deadline:
                tries[message_id] += 1
                try:
                    if smtp_send(port, mail(message_id=message_id)).code == 250:
                        progress.add(message_id)
                        break
                except OSError:
                    pass  # the listener was killed mid-conversation: try again
                time.sleep(0.1)  # an MTA's pause before it tries again

    threads = [threading.Thread(target=sender) for _ in range(SENDERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return dict(tries)


class BrokerOutage:
    """RabbitMQ stops while a given range of mails is being answered: intake goes on without it."""

    def __init__(self, progress: Progress, deadline: float) -> None:
        self.progress, self.deadline = progress, deadline
        self.accepted_during = 0
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        start, end = OUTAGE
        if not self.progress.wait_for(start, self.deadline):
            return
        rabbitmqctl("stop_app")
        try:
            self.progress.wait_for(end, self.deadline)
            self.accepted_during = len(self.progress.accepted) - start
        finally:
            rabbitmqctl("start_app")


def rabbitmqctl(command: str) -> None:
    subprocess.run(["rabbitmqctl", command], check=True, capture_output=True, timeout=120)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("setup", ["sqlite", "sqlite, 2 processes", "postgresql+rabbitmq"])
def test_a_thousand_mails_survive_kills_restarts_and_a_broker_outage(
    tmp_path: Path, setup: str, request: pytest.FixtureRequest
) -> None:
    if setup.startswith("sqlite"):
        database_url, broker_url = request.getfixturevalue("sqlite_url"), ""
    else:
        database_url = request.getfixturevalue("postgres_url")
        broker_url = request.getfixturevalue("rabbitmq_url")
    relay = Sink(free_port()).start()
    settings = settings_for(
        tmp_path / "var",
        database_url,
        broker_url=broker_url,
        sink_port=relay.port,
        worker_threads=WORKER_THREADS,
        stale_sending_after=3.0,
        requeue_after=3.0,
        sweep_interval=0.5,
        send_backoff=0.5,
        autoreply_per_hour=10**6,
        autoreply_per_day=10**6,
        smtp_sender_rate=10**6,
    )
    env = settings_env(settings)
    subprocess.run(
        [sys.executable, "-m", "cli", "demo"], env=env, check=True, timeout=60, capture_output=True
    )
    log = tmp_path / "processes.log"
    if broker_url:
        processes = {
            "gateway": Process.gateway(["smtp"], env, log),
            "workers": Process(
                [
                    sys.executable,
                    "-m",
                    "dramatiq",
                    "workers.main",
                    "--processes",
                    "1",
                    "--threads",
                    str(WORKER_THREADS),
                ],
                env,
                log,
            ),
        }
    else:
        several = ["--processes", "2"] if setup.endswith("2 processes") else []
        processes = {"gateway": Process.gateway(["run", *several], env, log)}
    processes["gateway"].start(wait_port=settings.smtp_port, timeout=60)
    if "workers" in processes:
        processes["workers"].start()
    ids = [f"<harness-{n}@example.com>" for n in range(MAILS)]
    progress, deadline = Progress(), time.monotonic() + 300
    chaos = Chaos(processes, settings.smtp_port, progress, deadline, seed=20261121)
    outage = BrokerOutage(progress, deadline) if broker_url else None
    try:
        chaos.thread.start()
        if outage is not None:  # the broker goes away for a while, in the middle of it all
            outage.thread.start()
        tries = send_all(settings.smtp_port, ids, progress, deadline)
        chaos.thread.join(timeout=90)
        if outage is not None:
            outage.thread.join(timeout=180)
        for name, process in processes.items():  # everything up again, for the last mails
            if not process.alive:
                process.start(wait_port=settings.smtp_port if name == "gateway" else None)
        acknowledged = wait_for_acks(relay, set(ids), timeout=180)
        figures = count(database_url, relay, tries, chaos.kills, acknowledged)
        print(f"\ncrash harness ({setup}): {figures}")
    finally:
        for process in processes.values():
            process.stop()
        relay.stop()
    assert chaos.errors == []
    assert figures["mails sent"] == MAILS
    assert progress.accepted == set(ids)  # each got its 250
    assert figures["stored"] == MAILS  # every mail stored …
    assert figures["stored twice"] == 0  # … exactly once, however often it was sent
    assert figures["service requests"] == MAILS
    assert figures["acks sent"] == MAILS  # every acknowledgement reached the relay
    assert figures["kills"] == KILLS
    if outage is not None:  # intake went on while the broker was away
        assert outage.accepted_during >= OUTAGE[1] - OUTAGE[0]
    # An acknowledgement can go out twice only when a worker was killed after handing it to the
    # relay and before recording it: at most one per worker thread (of each process) and kill.
    per_process = 2 if setup.endswith("2 processes") else 1
    assert figures["acks repeated"] <= figures["kills"] * WORKER_THREADS * per_process


def wait_for_acks(relay: Sink, ids: set[str], timeout: float) -> set[str]:
    """The mails acknowledged, once all of `ids` are (or `timeout` passed)."""
    with contextlib.suppress(AssertionError):  # the test's assertions say what is missing
        relay.wait_until(lambda mails: ids <= _acknowledged(mails), timeout)
    return _acknowledged(relay.to(ALICE))


def _acknowledged(mails: list[Received]) -> set[str]:
    return {m.message["In-Reply-To"] for m in mails if ALICE in m.rcpt_tos}


def count(
    database_url: str,
    relay: Sink,
    tries: dict[str, int],
    kills: Counter[str],
    acknowledged: set[str],
) -> dict[str, Any]:
    engine = make_engine(database_url)
    with make_sessions(engine).begin() as session:
        stored = session.scalar(select(func.count()).select_from(StoredMail)) or 0
        distinct = session.scalar(select(func.count(func.distinct(StoredMail.message_id)))) or 0
        requests = session.scalar(select(func.count()).select_from(ServiceRequest)) or 0
    engine.dispose()
    acks = Counter(m.message["In-Reply-To"] for m in relay.to(ALICE))
    return {
        "mails sent": len(tries),
        "smtp attempts": sum(tries.values()),
        "stored": stored,
        "stored twice": stored - distinct,
        "service requests": requests,
        "acks sent": len(acknowledged),
        "acks repeated": sum(acks.values()) - len(acks),
        "kills": sum(kills.values()),
        "kills by process": dict(kills),
    }
