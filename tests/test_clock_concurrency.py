"""Two clock processes on PostgreSQL: every due Deadline is acted on exactly once."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from gateway.assembly import build
from gateway.intake.receipts import RawMail
from gateway.intake.receive import receive
from gateway.storage.models import Deadline, Delivery
from tests.support.harness import (
    OffsetClock,
    Process,
    eventually,
    mail,
    populate,
    settings_env,
    settings_for,
)
from tests.support.sink import Sink

REQUESTS = 600  # more than one clock's batch (500), so that both clocks have work


def test_two_clock_processes_on_postgresql_send_every_alert_exactly_once(
    tmp_path: Path, sink: Sink, postgres_url: str
) -> None:
    settings = settings_for(
        tmp_path / "var", postgres_url, sink_port=sink.port, clock_interval=0.2, worker_threads=4
    )
    # Given SRs opened three days ago and never answered: their targets are all missed now
    past = build(settings, clock=OffsetClock(datetime.now(UTC) - timedelta(days=3)))
    populate(past)
    for _ in range(REQUESTS):
        data = mail(message_id=f"<{uuid.uuid4().hex}@example.com>")
        receive(RawMail(data, "smtp", "alice@example.com", ("soc@securecall.example",)), past)
    past.sessions.kw["bind"].dispose()
    rt = build(settings)
    # When two clocks run side by side
    env = settings_env(settings)
    clocks = [Process.gateway(["clock"], env, tmp_path / f"clock{n}.log").start() for n in (1, 2)]
    try:

        def settled() -> bool:
            with rt.sessions.begin() as session:
                due = session.scalar(
                    select(func.count())
                    .select_from(Deadline)
                    .where(Deadline.next_at <= datetime.now(UTC))
                )
                pending = session.scalar(
                    select(func.count()).select_from(Delivery).where(Delivery.status != "sent")
                )
            return due == 0 and pending == 0

        eventually(settled, timeout=120, interval=0.5)
    finally:
        for process in clocks:
            process.stop()
    # Then each SR had exactly one breach alert and one not-updated alert, written and sent
    with rt.sessions.begin() as session:
        written = Counter(
            session.execute(
                select(Delivery.sr_id, Delivery.template).where(
                    Delivery.template.in_(("target_breached", "not_updated"))
                )
            ).all()
        )
    rt.sessions.kw["bind"].dispose()
    assert len(written) == REQUESTS * 2
    assert set(written.values()) == {1}
    subjects = Counter(
        m.message["Subject"]
        for m in sink.to("soc-queue@securecall.example")
        if "BREACHED" in m.message["Subject"] or "Not updated" in m.message["Subject"]
    )
    assert len(subjects) == REQUESTS * 2
    assert set(subjects.values()) == {1}
    # And both clocks did part of the work
    logs = [(tmp_path / f"clock{n}.log").read_text() for n in (1, 2)]
    assert all("clock:" in log for log in logs), logs
