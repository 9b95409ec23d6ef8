"""R6.2: a crash after the 250 loses nothing and sends nothing twice."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.core.runtime import Sessions
from gateway.storage.db import make_engine, make_sessions
from gateway.storage.models import Delivery
from tests.support.harness import (
    Process,
    eventually,
    mail,
    outbox_quiet,
    settings_env,
    settings_for,
    smtp_send,
)
from tests.support.services import ClosedPort
from tests.support.sink import Sink


@pytest.mark.parametrize("setup", ["sqlite", "postgresql+rabbitmq"])
def test_killed_after_250_and_before_the_ack_then_restarted_sends_exactly_one_ack(
    tmp_path: Path, setup: str, request: pytest.FixtureRequest
) -> None:
    if setup == "sqlite":
        database_url, broker_url = request.getfixturevalue("sqlite_url"), ""
    else:
        database_url = request.getfixturevalue("postgres_url")
        broker_url = request.getfixturevalue("rabbitmq_url")
    relay_port = ClosedPort()  # refused until the relay is back: the acknowledgement cannot leave
    settings = settings_for(
        tmp_path / "var",
        database_url,
        broker_url=broker_url,
        sink_port=relay_port.port,
        send_backoff=0.5,
        stale_sending_after=2.0,
    )
    env = settings_env(settings)
    subprocess.run(
        [sys.executable, "-m", "cli", "demo"], env=env, check=True, timeout=60, capture_output=True
    )
    log = tmp_path / "gateway.log"
    sessions = make_sessions(make_engine(database_url))
    try:
        _killed_before_the_ack_and_restarted(sessions, env, log, settings.smtp_port, relay_port)
    finally:
        sessions.kw["bind"].dispose()  # also when it failed: nothing left for the next test


def _killed_before_the_ack_and_restarted(
    sessions: Sessions, env: dict[str, str], log: Path, smtp_port: int, relay_port: ClosedPort
) -> None:
    def waiting() -> bool:
        with sessions.begin() as session:
            delivery = session.scalars(
                select(Delivery).where(Delivery.audience == "customer")
            ).first()
            return delivery is not None and delivery.attempts >= 1 and delivery.sent_at is None

    # Given a gateway that answered 250 and could not yet send the acknowledgement
    first = Process.gateway(["run"], env, log).start(wait_port=smtp_port)
    try:
        assert smtp_send(smtp_port, mail(message_id="<crash@example.com>")).code == 250
        eventually(waiting)
    finally:
        # When it is killed outright
        first.kill()
    # And started again, with the relay back
    relay = Sink(relay_port.open()).start()
    relay.watch(lambda: outbox_quiet(sessions, datetime.now(UTC)))
    second = Process.gateway(["run"], env, log).start(wait_port=smtp_port)
    try:
        # Then exactly one acknowledgement is sent
        (ack,) = relay.wait_to("alice@example.com", timeout=30)
        assert ack.message["In-Reply-To"] == "<crash@example.com>"
        assert len(relay.settle_to("alice@example.com")) == 1
        with sessions.begin() as session:
            (delivery,) = session.scalars(select(Delivery).where(Delivery.audience == "customer"))
            assert delivery.status == "sent"
    finally:
        second.stop()
        relay.stop()
