"""The same code on every set-up: SQLite, in-process workers; PostgreSQL with RabbitMQ or Redis."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from gateway.storage.models import Delivery, ServiceRequest
from tests.support.harness import (
    Gateway,
    Process,
    eventually,
    mail,
    settings_env,
    settings_for,
    smtp_send,
)
from tests.support.sink import Sink

ALICE = "alice@example.com"


def test_the_journey_passes_on_every_backend(
    make_gateway: Any, sink: Sink, backend: tuple[str, str]
) -> None:
    database_url, broker_url = backend
    gateway: Gateway = make_gateway(database_url=database_url, broker_url=broker_url)
    assert gateway.send(mail(message_id="<backend@example.com>")).code == 250
    assert gateway.send(mail(message_id="<backend@example.com>")).code == 250  # once more
    (ack,) = sink.wait_to(ALICE)
    assert ack.message["In-Reply-To"] == "<backend@example.com>"
    sr_id = re.search(r"SR-[0-9A-Z]{4}-[0-9A-Z]{4}", ack.message["Subject"]).group(0)
    reply = mail(
        subject=f"Re: [{sr_id}] VPN", body="More detail.", in_reply_to=ack.message["Message-ID"]
    )
    assert gateway.send(reply).code == 250
    with gateway.runtime.sessions.begin() as session:
        assert session.scalar(select(func.count(ServiceRequest.id))) == 1
    assert len(sink.settle_to(ALICE)) == 1  # the reply is not acknowledged
    eventually(lambda: set(_statuses(gateway)) == {"sent"})


def _statuses(gateway: Gateway) -> list[str]:
    with gateway.runtime.sessions.begin() as session:
        return list(session.scalars(select(Delivery.status)))


def test_at_scale_listener_and_dramatiq_workers_run_as_separate_processes(
    tmp_path: Path, sink: Sink, postgres_url: str, rabbitmq_url: str
) -> None:
    """`gateway smtp` and `dramatiq workers.main`, talking only through PostgreSQL and RabbitMQ."""
    settings = settings_for(
        tmp_path / "var", postgres_url, broker_url=rabbitmq_url, sink_port=sink.port
    )
    env = settings_env(settings)
    log = tmp_path / "processes.log"
    loaded = subprocess.run(
        [sys.executable, "-m", "cli", "demo"], env=env, capture_output=True, timeout=60, check=True
    )
    assert b"demo customer loaded" in loaded.stdout
    listener = Process.gateway(["smtp"], env, log).start(wait_port=settings.smtp_port)
    workers = Process(
        [sys.executable, "-m", "dramatiq", "workers.main", "--processes", "1", "--threads", "2"],
        env,
        log,
    ).start()
    try:
        for n in range(5):
            reply = smtp_send(settings.smtp_port, mail(message_id=f"<scale-{n}@example.com>"))
            assert reply.code == 250
        acks = sink.wait_to(ALICE, 5, timeout=60)
        assert sorted(a.message["In-Reply-To"] for a in acks) == [
            f"<scale-{n}@example.com>" for n in range(5)
        ]
    finally:
        listener.stop()
        workers.stop()
