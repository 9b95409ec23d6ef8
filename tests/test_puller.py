"""Bulk processes (`gateway bulk`, workers/puller.py): on the embedded default a bulletin's mail
is claimed from the database by processes of their own, a chunk at a time, never by two, and
`gateway run` starts them once a bulletin is drafted or goes out."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from gateway.assembly import build
from gateway.core.runtime import Runtime
from gateway.outbound import pulling, sending
from gateway.outbound.outbox import sweep
from gateway.storage import db
from gateway.storage.db import transaction
from gateway.storage.tables import BULLETINS, DELIVERIES
from gateway.sus import bulletin_queries, bulletins
from gateway.sus.fanout import DRAFT_WARM, fan_out
from tests.support.bulletins import ADMIN, new_bulletin, subscribe_many
from tests.support.counting_sink import CountingSink
from tests.support.harness import (
    Process,
    eventually,
    outbox_quiet,
    populate,
    settings_env,
    settings_for,
)


def written_for_pullers(rt: Runtime, subscribers: int) -> list[int]:
    """A bulletin fanned out by a gateway whose bulletin mail is pulled: its Delivery ids."""
    started: list[bool] = []
    rt.outbox.pull_with(lambda: started.append(True))
    subscribe_many(rt, subscribers)
    bulletin_id = new_bulletin(rt)
    bulletins.publish(rt, bulletin_id, ADMIN, hand_over=False)
    assert fan_out(rt, bulletin_id) == subscribers
    assert started  # the fan-out asked for the bulk processes
    with transaction(rt.sessions, readonly=True) as conn:
        rows = conn.execute(
            select(DELIVERIES.c.id, DELIVERIES.c.enqueued_at).where(DELIVERIES.c.queue == "bulk")
        ).all()
    assert [enqueued for _, enqueued in rows] == [None] * subscribers  # left to be claimed
    return sorted(i for i, _ in rows)


@pytest.fixture(params=["sqlite_url", "postgres_url"])
def quiet_rt(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Runtime]:
    """A runtime with the test directory and no workers, on SQLite and on PostgreSQL."""
    settings = settings_for(tmp_path / "var", request.getfixturevalue(request.param), sink_port=1)
    rt = build(settings)
    try:
        populate(rt)
        yield rt
    finally:
        db.close(rt.sessions)


def test_two_pullers_claim_every_mail_once_and_a_retry_when_it_comes_due(
    quiet_rt: Runtime,
) -> None:
    rt = quiet_rt
    ids = written_for_pullers(rt, 45)
    now = rt.now()
    # the sweep of a gateway whose bulletin mail is pulled leaves it to the pullers
    assert sweep(rt.sessions, rt.outbox, now, requeue_after=60, stale_after=300) == 0
    cursors, claimed = [0, 0], []
    for turn in range(12):  # two pullers taking turns, each from where its claims ended
        with transaction(rt.sessions, durable=False) as conn:
            chunk = pulling.claim_bulk(conn, now, cursors[turn % 2], 10)
        if chunk:
            cursors[turn % 2] = chunk[-1]
        claimed.append(chunk)
    assert [len(c) for c in claimed] == [10, 10, 10, 10, 5, 0, 0, 0, 0, 0, 0, 0]
    assert sorted(i for c in claimed for i in c) == ids  # each once
    with transaction(rt.sessions, readonly=True) as conn:
        assert pulling.first_unclaimed_bulk(conn, now) is None
    # a 4xx: pending again, unclaimed, due later; found from below the cursors when due
    with transaction(rt.sessions) as conn:
        later = now + timedelta(seconds=30)
        sending.refused(conn, ids[3], marked=False, error="451 later", retry_at=later)
        assert pulling.claim_bulk(conn, later, max(cursors), 10) == []
        assert pulling.first_unclaimed_bulk(conn, now) is None  # not due yet
        assert pulling.first_unclaimed_bulk(conn, later) == ids[3]
        assert pulling.claim_bulk(conn, later, ids[3] - 1, 10) == [ids[3]]
        # one claimed and lost (its puller killed) is the sweep's after requeue_after
        conn.execute(
            update(DELIVERIES)
            .where(DELIVERIES.c.id == ids[7])
            .values(enqueued_at=now - timedelta(seconds=120))
        )
    assert sweep(rt.sessions, rt.outbox, now, requeue_after=60, stale_after=300) == 1


def test_pullers_claiming_at_the_same_time_never_share_a_mail(quiet_rt: Runtime) -> None:
    rt = quiet_rt
    ids = written_for_pullers(rt, 400)
    now = rt.now()
    claimed: list[list[int]] = [[] for _ in range(4)]
    start = threading.Barrier(4)

    def puller(n: int) -> None:
        start.wait()
        while True:  # bounded: each turn claims some of the 400, or ends
            with transaction(rt.sessions, durable=False) as conn:
                chunk = pulling.claim_bulk(conn, now, 0, 10)
            if not chunk:
                return
            claimed[n].extend(chunk)

    threads = [threading.Thread(target=puller, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    every = [i for chunk in claimed for i in chunk]
    assert sorted(every) == ids  # each claimed, and by one puller only


def bulk_children(process: Process) -> list[str]:
    """The command lines of the `gateway bulk` processes a gateway process started."""
    assert process.proc is not None
    pid = process.proc.pid
    children = [
        child
        for task in Path(f"/proc/{pid}/task").iterdir()
        for child in (task / "children").read_text().split()
    ]
    lines = [
        Path(f"/proc/{c}/cmdline").read_bytes().replace(b"\0", b" ").decode() for c in children
    ]
    return [line for line in lines if " -m cli bulk " in line]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_gateway_run_sends_a_bulletin_from_bulk_processes_it_starts_once_one_is_drafted(
    tmp_path: Path, sqlite_url: str
) -> None:
    sink = CountingSink().start()
    settings = settings_for(
        tmp_path / "var", sqlite_url, sink_port=sink.port, bulk_processes=2, requeue_after=3600
    )
    rt = build(settings)
    populate(rt)
    addresses = subscribe_many(rt, 600)
    env = settings_env(settings)
    gateway = Process.gateway(["run"], env, tmp_path / "gateway.log")
    try:
        gateway.start(wait_port=settings.smtp_port)
        assert bulk_children(gateway) == []  # none while no bulletin is to go out
        bulletin_id = new_bulletin(rt)
        # the draft is seen by the sweep, which starts them before the bulletin is published
        eventually(lambda: len(bulk_children(gateway)) == 2, 60)
        assert not sink.mails  # nothing goes out before the publish
        command = [sys.executable, "-m", "cli", "bulletins", "publish", str(bulletin_id)]
        subprocess.run([*command, "--no-wait"], env=env, check=True, timeout=120)
        sink.wait_until(lambda s: len(s.mails) >= 600, timeout=200)
        eventually(lambda: outbox_quiet(rt.sessions, rt.now()) and sink.quiet_in_data(), 60)
        children = bulk_children(gateway)
        with transaction(rt.sessions, readonly=True) as conn:
            rows = conn.execute(
                select(DELIVERIES.c.status, DELIVERIES.c.enqueued_at).where(
                    DELIVERIES.c.queue == "bulk"
                )
            ).all()
    finally:
        gateway.stop()
        sink.stop()
        db.close(rt.sessions)
    assert len(children) == 2
    assert sorted(sink.counts) == sorted(addresses)
    assert set(sink.counts.values()) == {1}
    # The fan-out wrote every mail unenqueued, and the gateway's sweep leaves such mail alone:
    # each was sent by a bulk process that claimed it
    assert len(rows) == 600
    assert all(status == "sent" and enqueued is not None for status, enqueued in rows)
    log = (tmp_path / "gateway.log").read_text()
    assert log.count("sending bulletin mail claimed from the database") == 2


def test_a_fresh_draft_or_a_bulletin_going_out_asks_for_bulk_processes_an_old_draft_not(
    quiet_rt: Runtime,
) -> None:
    rt, now = quiet_rt, quiet_rt.now()
    since = now - DRAFT_WARM
    with transaction(rt.sessions, readonly=True) as conn:
        assert not bulletin_queries.any_to_send(conn, since)  # nothing written yet
    draft = new_bulletin(rt)
    with transaction(rt.sessions, readonly=True) as conn:
        assert bulletin_queries.any_to_send(conn, since)
    with transaction(rt.sessions) as conn:  # the same draft, left alone for two hours
        old = now - timedelta(hours=2)
        conn.execute(update(BULLETINS).where(BULLETINS.c.id == draft).values(created_at=old))
    with transaction(rt.sessions, readonly=True) as conn:
        assert not bulletin_queries.any_to_send(conn, since)
    bulletins.publish(rt, draft, ADMIN, hand_over=False)  # going out, however old
    with transaction(rt.sessions, readonly=True) as conn:
        assert bulletin_queries.any_to_send(conn, since)
