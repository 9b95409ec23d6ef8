"""Bookkeeping on PostgreSQL in one round trip (storage/unwaited.py): each statement commits by
itself without waiting for the disk, on connections of their own, and one the server dropped is
replaced without the statement failing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text

from gateway.core.runtime import Sessions
from gateway.storage import db, unwaited
from gateway.storage.db import transaction


@pytest.fixture
def sessions(postgres_url: str) -> Iterator[Sessions]:
    made = db.make_sessions(db.make_engine(postgres_url))
    db.prepare(made.kw["bind"])
    try:
        yield made
    finally:
        db.close(made)


def test_a_statement_commits_by_itself_and_does_not_wait_for_the_disk(sessions: Sessions) -> None:
    assert unwaited.applies(sessions)
    # Given a table that only this test writes
    with transaction(sessions) as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS unwaited_probe (n integer)"))
        conn.execute(text("DELETE FROM unwaited_probe"))
    # When a row goes in as bookkeeping
    unwaited.run(sessions, lambda c: c.execute(text("INSERT INTO unwaited_probe VALUES (7)")))
    # Then another connection sees it at once: nothing was left to commit
    with transaction(sessions, readonly=True) as conn:
        assert conn.scalar(text("SELECT n FROM unwaited_probe")) == 7
    # and its connection does not wait for the WAL's flush, unlike intake's transactions
    assert unwaited.run(sessions, lambda c: c.scalar(text("SHOW synchronous_commit"))) == "off"
    with transaction(sessions) as conn:
        assert conn.scalar(text("SHOW synchronous_commit")) == "on"
        conn.execute(text("DROP TABLE unwaited_probe"))


def test_a_connection_the_server_dropped_is_replaced_and_the_statement_still_runs(
    sessions: Sessions,
) -> None:
    # Given a pooled bookkeeping connection whose server process is ended (a restart)
    first = unwaited.run(sessions, lambda c: c.scalar(text("SELECT pg_backend_pid()")))
    with transaction(sessions) as conn:
        assert conn.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
    # When the next statement runs, Then it gets its answer, from a new server process
    again = unwaited.run(sessions, lambda c: c.scalar(text("SELECT pg_backend_pid()")))
    assert again != first
