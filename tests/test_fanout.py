"""R4.3, "each bulletin goes to every active subscriber of its product, once": 10,000 subscribers
at a counting SMTP sink, on SQLite and on PostgreSQL + RabbitMQ; the same with the worker
SIGKILLed twice during the fan-out and `publish` run again; and acknowledgements that do not
wait behind the bulk backlog."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from gateway.assembly import build
from gateway.core.runtime import Runtime
from gateway.storage import db
from gateway.storage.models import BulletinRecipient
from gateway.sus import bulletins
from tests.support.bulletins import ADMIN, new_bulletin, subscribe_many
from tests.support.counting_sink import CountingSink
from tests.support.harness import (
    Gateway,
    Process,
    eventually,
    mail,
    outbox_quiet,
    populate,
    settings_env,
    settings_for,
)

SUBSCRIBERS = 10_000
SETUPS = {"sqlite": ("sqlite_url", None), "postgresql+rabbitmq": ("postgres_url", "rabbitmq_url")}


@pytest.fixture
def counting() -> Iterator[CountingSink]:
    sink = CountingSink().start()
    yield sink
    sink.stop()


@pytest.fixture(params=list(SETUPS))
def setup(request: pytest.FixtureRequest) -> tuple[str, str]:
    database, broker = SETUPS[request.param]
    return request.getfixturevalue(database), request.getfixturevalue(broker) if broker else ""


def assert_each_once(sink: CountingSink, addresses: list[str]) -> None:
    missing = [a for a in addresses if sink.counts[a] == 0]
    twice = {a: n for a, n in sink.counts.items() if n > 1}
    assert (len(missing), len(twice)) == (0, 0), (missing[:5], list(twice.items())[:5])
    assert set(sink.counts) == set(addresses)


def settled(rt: Runtime, sink: CountingSink) -> bool:
    """Nothing left to send, and no mail half-way into the sink."""
    return outbox_quiet(rt.sessions, rt.now()) and sink.quiet_in_data()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_bulletin_to_10000_subscribers_reaches_each_exactly_once(
    make_gateway: Callable[..., Gateway], counting: CountingSink, setup: tuple[str, str]
) -> None:
    database_url, broker_url = setup
    gateway = make_gateway(
        database_url=database_url,
        broker_url=broker_url,
        outbound_url=f"smtp://127.0.0.1:{counting.port}?tls=none",
        worker_threads=4,
    )
    rt = gateway.runtime
    addresses = subscribe_many(rt, SUBSCRIBERS)
    bulletin_id = new_bulletin(rt)
    bulletins.publish(rt, bulletin_id, ADMIN, hand_over=True)
    counting.wait_until(lambda s: len(s.mails) >= SUBSCRIBERS, timeout=500)
    eventually(lambda: settled(rt, counting), timeout=60)
    assert_each_once(counting, addresses)
    figures = bulletins.status(rt, bulletin_id)
    shown = (figures["state"], figures["audience"], figures["written"], figures["sent"])
    assert shown == ("published", SUBSCRIBERS, SUBSCRIBERS, SUBSCRIBERS)


def killed_at_rest(process: Process, sink: CountingSink) -> None:
    """SIGKILL while every connection waits on the relay: the sink stops answering, the mails
    already in flight arrive whole (a worker that marked one sent is about to end it), and the
    kill finds each worker between two mails or waiting for a reply. The mails whose final dot
    the sink has but whose 250 never reached the worker are the ones a resend would duplicate.

    The workers are stopped (SIGSTOP) before the last look: a mail marked sent is one whose data
    was written before its mark, so once they are still, data the sink has not seen ended is data
    of a mail that may be marked and not ended. Then they go on until it is ended, and are
    stopped and looked at again."""
    sink.hold()
    try:
        for _ in range(100):
            eventually(sink.quiet_in_data, timeout=30)
            process.pause()
            if sink.quiet_in_data():
                process.kill()
                return
            process.resume()
        raise AssertionError("the workers never came to rest with the sink holding its answers")
    finally:
        sink.release()


def written(rt: Runtime, bulletin_id: int) -> int:
    with rt.sessions.begin() as session:
        return (
            session.scalar(
                select(func.count())
                .select_from(BulletinRecipient)
                .where(BulletinRecipient.bulletin_id == bulletin_id)
            )
            or 0
        )


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_killed_twice_during_the_fan_out_and_published_again_each_gets_it_once(
    tmp_path: Path, counting: CountingSink, setup: tuple[str, str]
) -> None:
    database_url, broker_url = setup
    settings = settings_for(
        tmp_path / "var",
        database_url,
        broker_url=broker_url,
        sink_port=counting.port,
        sweep_interval=0.5,
        sus_fanout_batch=250,
    )
    rt = build(settings)
    populate(rt)
    addresses = subscribe_many(rt, SUBSCRIBERS)
    bulletin_id = new_bulletin(rt)
    env = settings_env(settings)
    log = tmp_path / "gateway.log"
    # the worker: `gateway run` on the embedded default; `dramatiq workers.main` beside
    # `gateway smtp` (its sweep) on PostgreSQL + RabbitMQ
    sweeper = None
    if broker_url:
        sweeper = Process.gateway(["smtp"], env, log).start(wait_port=settings.smtp_port)

    def worker() -> Process:
        if not broker_url:
            return Process.gateway(["run"], env, log).start(wait_port=settings.smtp_port)
        argv = [sys.executable, "-m", "dramatiq", "workers.main", "--processes", "1"]
        return Process([*argv, "--threads", "4"], env, log).start()

    def publish() -> None:
        command = [sys.executable, "-m", "cli", "bulletins", "publish", str(bulletin_id)]
        subprocess.run([*command, "--no-wait"], env=env, check=True, timeout=120)

    running = worker()
    try:
        publish()
        # first kill: while the fan-out is writing its batches
        eventually(lambda: written(rt, bulletin_id) >= 2_000, timeout=300, interval=0.02)
        killed_at_rest(running, counting)
        first = (written(rt, bulletin_id), counting.received())
        running = worker()
        publish()
        # second kill: in the middle of the sending
        target = first[1] + 3_000
        counting.wait_until(lambda s: len(s.mails) >= target, timeout=300)
        killed_at_rest(running, counting)
        running = worker()
        publish()
        counting.wait_until(lambda s: len(s.mails) >= SUBSCRIBERS, timeout=500)
        eventually(lambda: settled(rt, counting), timeout=60)
        state = bulletins.status(rt, bulletin_id)["state"]
    finally:
        running.stop()
        if sweeper is not None:
            sweeper.stop()
        db.close(rt.sessions)
    print(f"first kill at {first[0]} written, {first[1]} received")
    assert first[0] < SUBSCRIBERS  # the fan-out was still writing when it was killed
    assert_each_once(counting, addresses)
    assert state == "published"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_an_acknowledgement_does_not_wait_behind_a_large_bulletin(
    make_gateway: Callable[..., Gateway], counting: CountingSink
) -> None:
    gateway = make_gateway(
        outbound_url=f"smtp://127.0.0.1:{counting.port}?tls=none", worker_threads=4
    )
    rt = gateway.runtime
    total = 3_000
    addresses = set(subscribe_many(rt, total))
    bulletin_id = new_bulletin(rt)
    bulletins.publish(rt, bulletin_id, ADMIN, hand_over=True)
    counting.wait_until(lambda s: len(s.mails) >= 200, timeout=300)
    assert gateway.send(mail(subject="VPN down while the bulletin goes out")).code == 250
    at_250 = counting.received()
    counting.wait_until(lambda s: s.counts["alice@example.com"] >= 1, timeout=120)
    order = [m.rcpt_tos[0] for m in list(counting.mails)]
    ack = order.index("alice@example.com")
    behind = sum(1 for r in order[at_250:ack] if r in addresses)
    backlog = total - at_250
    print(f"ack after {behind} bulletin mails of a backlog of {backlog}")
    assert behind < backlog / 2  # it went before the rest of the bulletin (PRIORITIES)
    counting.wait_until(lambda s: len(s.mails) >= total + 2, timeout=300)  # ack, SOC's copy
    eventually(lambda: settled(rt, counting), timeout=60)
    assert_each_once(
        counting, sorted(addresses | {"alice@example.com", rt.settings.soc_queue_address})
    )
