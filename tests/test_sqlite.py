"""The embedded database: its WAL is copied back by a thread of its own, never by a commit."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text

from gateway.storage import sqlite
from gateway.storage.db import make_engine, make_sessions, transaction
from gateway.storage.models import StoredMail
from tests.support.harness import Gateway, count, mail

ROW = b"x" * 6000  # two pages a row


@pytest.fixture
def engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Engine:
    monkeypatch.setattr(sqlite, "CHECKPOINT_WAL_BYTES", 64 * 1024)
    monkeypatch.setattr(sqlite, "CHECKPOINT_PERIOD", 0.02)
    monkeypatch.setattr(sqlite, "RESTART_FRAMES", 300)
    engine = make_engine(f"sqlite:///{tmp_path / 'gateway.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE blobs (id INTEGER PRIMARY KEY, b BLOB)"))
    yield engine
    engine.dispose()


def write(engine: Engine, rows: int) -> None:
    sessions = make_sessions(engine)
    for _ in range(rows):
        with transaction(sessions, durable=False) as conn:
            conn.execute(text("INSERT INTO blobs (b) VALUES (:b)"), {"b": ROW})


def sizes(engine: Engine) -> tuple[int, int]:
    database = engine.url.database or ""
    return os.path.getsize(database), os.path.getsize(f"{database}-wal")


def test_the_wal_is_copied_into_the_database_without_a_commit_doing_it(engine: Engine) -> None:
    write(engine, 150)  # ~300 pages: far below the 10,000 at which a commit would checkpoint
    deadline = time.monotonic() + 10
    while sizes(engine)[0] < 150 * len(ROW) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sizes(engine)[0] >= 150 * len(ROW), "the rows never reached the database file"


def test_under_steady_writes_the_wal_starts_over_instead_of_growing(engine: Engine) -> None:
    write(engine, 4000)  # ~8,000 pages, 32 MB written through the WAL
    database_size, wal_size = sizes(engine)
    assert database_size >= 2000 * len(ROW)
    # A passive checkpoint alone never finds the WAL fully copied while writers go on, and
    # the WAL would grow to the 10,000-page safety net; restarted, it stays near 300 pages.
    assert wal_size < 12 * 1024 * 1024, f"the WAL grew to {wal_size} bytes"
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM blobs")).scalar_one() == 4000


def test_a_database_locked_past_its_timeout_answers_451_and_quarantines_nothing(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """R6.6: "database is locked" may pass: the sender counts at MAIL FROM let the mail on
    (they are a guard, not a gate), DATA answers 451, and the mail sent again is stored."""
    monkeypatch.setattr(sqlite, "WRITE_LOCK_TIMEOUT", 0.3)
    database = gateway.runtime.sessions.kw["bind"].url.database
    lock = sqlite._write_lock(database).threads  # every writer of this process waits on it
    first = mail(subject="Firewall logs", message_id="<locked@example.com>")
    assert lock.acquire(timeout=10)
    try:
        reply = gateway.send(first)
    finally:
        lock.release()
    assert reply.code == 451, reply
    assert count(gateway, StoredMail) == 0  # nothing kept, nothing in quarantine
    assert gateway.send(first).code == 250
    assert [s.status for s in stored(gateway)] == ["accepted"]


def stored(gateway: Gateway) -> list[StoredMail]:
    with gateway.runtime.sessions.begin() as session:
        return list(session.scalars(select(StoredMail)))
