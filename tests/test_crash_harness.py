"""Crash safety, proven (R6.2): 1,000 mails while the gateway and its workers are killed (SIGKILL)
and restarted at random moments, and the broker stopped for a while. At the end every mail is
stored exactly once and acknowledged; acknowledgements sent twice are counted and bounded.
"""

from __future__ import annotations

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

from gateway.db import make_engine, make_sessions
from gateway.models import ServiceRequest, StoredMail
from tests.support.harness import Process, mail, settings_env, settings_for, smtp_send
from tests.support.services import free_port
from tests.support.sink import Sink

MAILS = 1000
SENDERS = 4
WORKER_THREADS = 4
ALICE = "alice@example.com"


class Chaos:
    """Kills one of the processes with SIGKILL every few seconds and restarts it after a pause."""

    def __init__(self, processes: dict[str, Process], wait_port: int | None, seed: int) -> None:
        self.processes, self.wait_port = processes, wait_port
        self.random = random.Random(seed)
        self.kills: Counter[str] = Counter()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        deadline = time.monotonic() + 240
        while not self.done.wait(self.random.uniform(1.5, 3.5)) and time.monotonic() < deadline:
            name = self.random.choice(sorted(self.processes))
            process = self.processes[name]
            process.kill()
            self.kills[name] += 1
            time.sleep(self.random.uniform(0.1, 1.0))
            process.start(wait_port=self.wait_port if name == "gateway" else None, timeout=60)


def send_all(port: int, ids: list[str], deadline: float) -> tuple[dict[str, int], set[str]]:
    """Every mail until it got its 250, retried like an MTA (on refusals and broken connections).

    Returns the attempts per mail and the mails that got their 250."""
    work: queue.Queue[str] = queue.Queue()
    for message_id in ids:
        work.put(message_id)
    tries: Counter[str] = Counter()
    accepted: set[str] = set()

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
                        accepted.add(message_id)
                        break
                except OSError:
                    pass  # the listener was killed mid-conversation: try again
                time.sleep(0.1)

    threads = [threading.Thread(target=sender) for _ in range(SENDERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return dict(tries), accepted


def broker_outage(seconds: float) -> None:
    subprocess.run(["rabbitmqctl", "stop_app"], check=True, capture_output=True, timeout=60)
    try:
        time.sleep(seconds)
    finally:
        subprocess.run(["rabbitmqctl", "start_app"], check=True, capture_output=True, timeout=120)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("setup", ["sqlite", "postgresql+rabbitmq"])
def test_a_thousand_mails_survive_kills_restarts_and_a_broker_outage(
    tmp_path: Path, setup: str, request: pytest.FixtureRequest
) -> None:
    if setup == "sqlite":
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
        processes = {"gateway": Process.gateway(["run"], env, log)}
    processes["gateway"].start(wait_port=settings.smtp_port, timeout=60)
    if "workers" in processes:
        processes["workers"].start()
    chaos = Chaos(processes, settings.smtp_port, seed=20261121)
    ids = [f"<harness-{n}@example.com>" for n in range(MAILS)]
    outage = None
    try:
        chaos.thread.start()
        if broker_url:  # the broker goes away for a while, in the middle of it all
            outage = threading.Timer(4.0, broker_outage, args=(6.0,))
            outage.start()
        tries, accepted = send_all(settings.smtp_port, ids, deadline=time.monotonic() + 300)
        chaos.done.set()
        chaos.thread.join(timeout=90)
        if outage is not None:
            outage.join(timeout=180)
        for name, process in processes.items():  # everything up again, for the last mails
            if not process.alive:
                process.start(wait_port=settings.smtp_port if name == "gateway" else None)
        acknowledged = wait_for_acks(relay, set(ids), timeout=180)
        figures = count(database_url, relay, tries, chaos.kills, acknowledged)
        print(f"\ncrash harness ({setup}): {figures}")
    finally:
        chaos.done.set()
        for process in processes.values():
            process.stop()
        relay.stop()
    assert figures["mails sent"] == MAILS
    assert accepted == set(ids)  # each got its 250
    assert figures["stored"] == MAILS  # every mail stored …
    assert figures["stored twice"] == 0  # … exactly once, however often it was sent
    assert figures["service requests"] == MAILS
    assert figures["acks sent"] == MAILS  # every acknowledgement reached the relay
    assert figures["kills"] >= 3
    # An acknowledgement can go out twice only when a worker was killed after handing it to the
    # relay and before recording it: at most one per worker thread and kill.
    assert figures["acks repeated"] <= figures["kills"] * WORKER_THREADS


def wait_for_acks(relay: Sink, ids: set[str], timeout: float) -> set[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen = {m.message["In-Reply-To"] for m in relay.to(ALICE)}
        if ids <= seen:
            return seen
        time.sleep(0.5)
    return {m.message["In-Reply-To"] for m in relay.to(ALICE)}


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
