"""Group commit (gateway/intake/committer.py): steps given together share one transaction, each in
a savepoint of its own; a caller hears of its step only once the group committed."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import Connection, text

from gateway.core.runtime import Sessions
from gateway.observe import metrics
from gateway.storage import committer as committer_module
from gateway.storage.committer import Committer
from gateway.storage.db import make_engine, make_sessions
from gateway.storage.models import ServiceRequest, StoredMail
from tests.support.harness import Gateway, count, eventually, mail


@pytest.fixture(params=["sqlite_url", "postgres_url"])
def sessions(request: pytest.FixtureRequest) -> Iterator[Sessions]:
    engine = make_engine(request.getfixturevalue(request.param))
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS grouped"))
        conn.execute(text("CREATE TABLE grouped (n INTEGER PRIMARY KEY, txid VARCHAR(40))"))
    yield make_sessions(engine)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE grouped"))
    engine.dispose()


def insert(n: int, fail: bool = False) -> Callable[[Connection], int]:
    def step(conn: Connection) -> int:
        conn.execute(
            text("INSERT INTO grouped (n, txid) VALUES (:n, :t)"), {"n": n, "t": txid(conn)}
        )
        if fail:
            raise ValueError(f"step {n} fails after its insert")
        return n

    return step


def txid(conn: Connection) -> str:
    """Which transaction a statement ran in (SQLite has one writer: its committer's connection)."""
    if conn.dialect.name == "postgresql":
        return str(conn.execute(text("SELECT txid_current()")).scalar())
    return str(id(conn.connection.dbapi_connection))


def stored(sessions: Sessions) -> dict[int, str]:
    with sessions.kw["bind"].connect() as conn:
        return dict(conn.execute(text("SELECT n, txid FROM grouped")).all())  # type: ignore[arg-type]


def groups_committed() -> float:
    metrics.COMMIT_GROUP.labels(work="test")  # the series exists from here on
    samples = metrics.COMMIT_GROUP.collect()[0].samples
    return next(
        s.value for s in samples if s.name.endswith("_count") and s.labels["work"] == "test"
    )


def held_group(
    sessions: Sessions, steps: list[Callable[[Connection], Any]], durable: bool = True
) -> list[Any]:
    """Give `steps` to the committer while it is busy with a first step, so that they wait
    together; let it go once all of them wait; the outcome of each (result or exception)."""
    observe = metrics.COMMIT_GROUP.labels(work="test").observe
    committer = Committer.of(sessions, durable=durable, observe=observe)
    entered, release = threading.Event(), threading.Event()

    def blocker(conn: Connection) -> int:
        entered.set()
        release.wait(30)
        return -1

    def outcome(step: Callable[[Connection], Any]) -> Any:
        try:
            return committer.write(step)
        except Exception as exc:
            return exc

    with ThreadPoolExecutor(len(steps) + 1) as pool:
        first = pool.submit(committer.write, blocker)
        assert entered.wait(30)
        futures = [pool.submit(outcome, step) for step in steps]
        eventually(lambda: len(committer.waiting) == len(steps))
        release.set()
        assert first.result(30) == -1
        return [future.result(30) for future in futures]


def test_steps_that_wait_together_share_one_transaction(sessions: Sessions) -> None:
    # Given five steps that arrive while the committer is busy
    before = groups_committed()
    # When the committer is free again
    results = held_group(sessions, [insert(n) for n in range(1, 6)])
    # Then all five are stored by one transaction, and each caller got its own result
    assert results == [1, 2, 3, 4, 5]
    rows = stored(sessions)
    assert sorted(rows) == [1, 2, 3, 4, 5]
    assert len(set(rows.values())) == 1
    assert groups_committed() - before == 2  # the first step's group, and the five


def test_a_failing_step_loses_only_its_own_writes(sessions: Sessions) -> None:
    # Given three steps of one group, the middle one failing after its insert
    results = held_group(sessions, [insert(1), insert(2, fail=True), insert(3)])
    # Then its caller gets its exception, and the others are stored
    assert results[0] == 1
    assert results[2] == 3
    assert isinstance(results[1], ValueError)
    assert sorted(stored(sessions)) == [1, 3]


def test_a_failing_bookkeeping_step_is_run_alone_and_the_others_again(sessions: Sessions) -> None:
    # Given the light committer (no savepoints) and a group whose middle step fails
    before = groups_committed()
    results = held_group(sessions, [insert(1), insert(2, fail=True), insert(3)], durable=False)
    # Then the group was rolled back and each step run in a transaction of its own: the
    # failing one gets its exception, the others are stored
    assert results[0] == 1
    assert results[2] == 3
    assert isinstance(results[1], ValueError)
    rows = stored(sessions)
    assert sorted(rows) == [1, 3]
    # the first step's group, then 1 and 3 alone (2 committed nothing)
    assert groups_committed() - before == 3


def test_bookkeeping_steps_share_one_transaction(sessions: Sessions) -> None:
    results = held_group(sessions, [insert(n) for n in range(1, 5)], durable=False)
    assert results == [1, 2, 3, 4]
    assert len(set(stored(sessions).values())) == 1


def test_a_failed_commit_fails_every_step_of_the_group(sessions: Sessions) -> None:
    # Given a group whose COMMIT fails (two steps insert the same key, the second in a statement
    # the savepoint keeps, made to fail only at the end by a deferred constraint)
    def defer_and_break(conn: Connection) -> int:
        if conn.dialect.name == "postgresql":
            conn.execute(text("CREATE TEMP TABLE parent (id INTEGER PRIMARY KEY) ON COMMIT DROP"))
            conn.execute(
                text(
                    "CREATE TEMP TABLE child (p INTEGER REFERENCES parent (id) "
                    "DEFERRABLE INITIALLY DEFERRED) ON COMMIT DROP"
                )
            )
        else:
            conn.execute(text("PRAGMA defer_foreign_keys = ON"))
            conn.execute(text("CREATE TEMP TABLE IF NOT EXISTS parent (id INTEGER PRIMARY KEY)"))
            conn.execute(
                text("CREATE TEMP TABLE IF NOT EXISTS child (p INTEGER REFERENCES parent (id))")
            )
        conn.execute(text("INSERT INTO child (p) VALUES (42)"))  # no parent 42: fails at COMMIT
        return 0

    results = held_group(sessions, [insert(1), defer_and_break, insert(3)])
    # Then no step was stored and every caller hears of the failure
    assert all(isinstance(result, Exception) for result in results), results
    assert stored(sessions) == {}
    # And the committer goes on with the next group
    assert Committer.of(sessions).write(insert(7)) == 7
    assert sorted(stored(sessions)) == [7]


def test_parallel_smtp_clients_through_group_commit_store_each_mail_once(
    make_gateway: Callable[..., Gateway],
) -> None:
    gateway = make_gateway(smtp_sender_rate=1000, autoreply_per_hour=1000)
    # Given eight clients sending at once, each of their mails twice (a retry after a lost 250)
    mails = [
        mail(subject=f"Tunnel {n} down", message_id=f"<grouped-{n}@example.com>") for n in range(40)
    ]
    shares = [mails[k::8] * 2 for k in range(8)]
    # When they all send
    with ThreadPoolExecutor(8) as pool:
        replies = [
            r for share in pool.map(lambda s: [gateway.send(m) for m in s], shares) for r in share
        ]
    # Then every DATA got its 250, and each mail is one stored row that opened one SR
    assert all(reply.code == 250 for reply in replies), [r for r in replies if r.code != 250][:3]
    assert count(gateway, StoredMail) == 40
    assert count(gateway, ServiceRequest) == 40


def test_an_idle_committer_ends_and_the_next_step_starts_another(
    sessions: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a committer that ends after a twentieth of a second without work
    monkeypatch.setattr(committer_module, "IDLE", 0.05)
    first = Committer.of(sessions)
    assert first.write(insert(1)) == 1
    # When it has ended
    eventually(lambda: not first.thread.is_alive())
    # Then a step given to it (or to the sessions) is taken by a new one, and stored
    assert first.write(insert(2)) == 2
    assert Committer.of(sessions) is not first
    assert sorted(stored(sessions)) == [1, 2]
