"""R6.1, R1.8: the limits are the gateway's, not one process's: N listeners behind the MX records
admit one sender's rate once in all, and a stranger gets one notice per interval in all."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text

from gateway.storage.db import make_engine
from gateway.storage.limits import claim_notice, count_sender
from gateway.storage.models import StoredMail
from tests.support.harness import (
    Process,
    eventually,
    mail,
    settings_env,
    settings_for,
    smtp_send,
)
from tests.support.services import free_port
from tests.support.sink import Sink

STRANGER = "flood@nowhere.example"
NOW = datetime(2026, 11, 18, 9, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def test_two_listeners_on_postgresql_admit_one_senders_rate_once_in_all(
    tmp_path: Path, postgres_url: str, sink: Sink
) -> None:
    env = settings_env(settings_for(tmp_path / "var", postgres_url, sink_port=sink.port))
    env["GATEWAY_SMTP_SENDER_RATE"] = "60"
    ports = [free_port(), free_port()]
    listeners = [
        Process.gateway(["smtp"], env | {"GATEWAY_SMTP_PORT": str(port)}, tmp_path / f"{n}.log")
        for n, port in enumerate(ports)
    ]
    try:
        for listener, port in zip(listeners, ports, strict=True):
            listener.start(wait_port=port)
        # 120 mails, one listener then the other; far less than the minute of the window
        codes = [
            smtp_send(ports[n % 2], mail(sender=STRANGER, subject=f"n{n}"), mail_from=STRANGER).code
            for n in range(120)
        ]
    finally:
        for listener in listeners:
            listener.stop()
    assert codes.count(250) == 60, codes
    assert codes.count(451) == 60, codes
    assert codes[:60] == [250] * 60  # the first 60 in all, whichever listener took them
    engine = make_engine(postgres_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(StoredMail)).scalar() == 60
    finally:
        engine.dispose()


@pytest.mark.parametrize("database", ["sqlite_url", "postgres_url"])
def test_a_senders_window_admits_its_limit_then_says_when_it_began(
    database: str, request: pytest.FixtureRequest
) -> None:
    engine = make_engine(request.getfixturevalue(database))
    try:
        with engine.begin() as conn:
            admitted = [count_sender(conn, STRANGER, NOW, MINUTE, 3) for _ in range(3)]
            assert admitted == [None, None, None]
            assert count_sender(conn, STRANGER, NOW + MINUTE / 2, MINUTE, 3) == NOW
            assert count_sender(conn, "other@nowhere.example", NOW, MINUTE, 3) is None
            # a minute after it began the window is over: a new one begins
            assert count_sender(conn, STRANGER, NOW + MINUTE, MINUTE, 3) is None
            assert count_sender(conn, STRANGER, NOW + MINUTE, MINUTE, 3) is None
    finally:
        engine.dispose()


def test_two_transactions_claiming_the_same_notice_at_once_give_it_once(
    postgres_url: str,
) -> None:
    engine = make_engine(postgres_url)
    since = NOW - timedelta(hours=24)
    results: list[bool] = []
    try:
        first = engine.connect()
        first.begin()
        assert claim_notice(first, STRANGER, "sender_unregistered", NOW, since)

        def second() -> None:  # waits on the first one's row until it commits
            with engine.begin() as conn:
                results.append(claim_notice(conn, STRANGER, "sender_unregistered", NOW, since))

        thread = threading.Thread(target=second)
        thread.start()
        eventually(lambda: _waiting_on_a_lock(engine))  # the claim is taken, not yet decided
        assert thread.is_alive()
        first.commit()
        first.close()
        thread.join(timeout=30)
        assert results == [False]
        with engine.begin() as conn:  # the next interval may have its notice
            later = NOW + timedelta(hours=24)
            assert claim_notice(conn, STRANGER, "sender_unregistered", later, later - (NOW - since))
    finally:
        engine.dispose()


def _waiting_on_a_lock(engine: Engine) -> bool:
    with engine.connect() as conn:  # a transaction of its own: statistics are read afresh
        waiting = conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO notice_limits%'"
            )
        ).scalar()
    return bool(waiting)
