"""Bookkeeping on PostgreSQL in one round trip (storage/unwaited.py): each statement commits by
itself without waiting for the disk, on connections of their own; one the server dropped is
replaced, a read on it run again, a write not (it may have been done)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from gateway.core.runtime import Sessions
from gateway.storage import unwaited
from gateway.storage.db import transaction
from tests.support.harness import database


@pytest.fixture
def sessions(postgres_url: str) -> Iterator[Sessions]:
    with database(postgres_url) as made:
        yield made


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


def test_a_read_on_a_connection_the_server_dropped_is_run_again_on_a_new_one(
    sessions: Sessions,
) -> None:
    # Given a pooled bookkeeping connection whose server process is ended (a restart)
    first = unwaited.run(sessions, lambda c: c.scalar(text("SELECT pg_backend_pid()")))
    terminate(sessions, first)
    # When the next read runs, Then it gets its answer, from a new server process
    read = unwaited.run(sessions, lambda c: c.scalar(text("SELECT pg_backend_pid()")), reads=True)
    assert read != first


def test_a_write_on_a_connection_the_server_dropped_fails_and_is_not_repeated(
    sessions: Sessions,
) -> None:
    # Given a dropped connection, as above
    first = unwaited.run(sessions, lambda c: c.scalar(text("SELECT pg_backend_pid()")))
    terminate(sessions, first)
    runs: list[int] = []

    def write(conn: Connection) -> int:
        runs.append(1)
        return int(conn.scalar(text("SELECT pg_backend_pid()")) or 0)

    # When a write runs on it, Then it fails once (it may have been done: not again) ...
    with pytest.raises(DBAPIError):
        unwaited.run(sessions, write)
    assert runs == [1]
    # ... and the next one gets a new connection
    assert unwaited.run(sessions, write) != first


def terminate(sessions: Sessions, pid: int) -> None:
    with transaction(sessions) as conn:
        assert conn.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})


def test_the_operators_connection_options_are_kept_beside_its_own(postgres_url: str) -> None:
    url = f"{postgres_url}?options=-c%20statement_timeout%3D12345"
    with database(url) as made:
        shown = unwaited.run(made, lambda c: c.execute(text("SHOW statement_timeout")).scalar())
        assert shown == "12345ms"
        assert unwaited.run(made, lambda c: c.scalar(text("SHOW synchronous_commit"))) == "off"
