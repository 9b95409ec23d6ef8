"""Bookkeeping on PostgreSQL in one round trip: a single statement that commits itself.

A Delivery's claim or "sent" mark, made once for each mail sent, is one UPDATE whose loss only
repeats work. In a transaction of the pool it took five round trips, each waited for by the
worker thread between two rounds of mail: the pool's ping, BEGIN, SET LOCAL synchronous_commit,
the statement, COMMIT. Here it runs on a connection of a pool of its own, in autocommit and with
synchronous_commit off for the whole session, and without the ping: one round trip. A connection
the server has dropped (a restart) fails its statement, is replaced, and the statement is run
once more on the new one.

Only for steps of one statement (autocommit makes each statement its own transaction). SQLite
needs none of this: its bookkeeping goes through the group committer (storage/committer.py).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.exc import DBAPIError

from gateway.core.runtime import Sessions

T = TypeVar("T")
_ENGINES: dict[tuple[int, int], Engine] = {}  # (process, the sessions' engine) -> its own pool
_GUARD = threading.Lock()


def applies(sessions: Sessions) -> bool:
    """Whether the sessions' database is PostgreSQL, where `run` is what bookkeeping uses."""
    engine: Engine = sessions.kw["bind"]
    return engine.dialect.name == "postgresql"


def run(sessions: Sessions, step: Callable[[Connection], T]) -> T:
    """`step` (one statement) committed by itself, not waiting for the disk; its result."""
    engine = _engine(sessions)
    try:
        with engine.connect() as conn:
            return step(conn)
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
    with engine.connect() as conn:  # the dropped connection is gone from the pool
        return step(conn)


def dispose(sessions: Sessions) -> None:
    """Close this process's pool for the sessions' database (at a clean stop)."""
    with _GUARD:
        engine = _ENGINES.pop((os.getpid(), id(sessions.kw["bind"])), None)
    if engine is not None:
        engine.dispose()


def _engine(sessions: Sessions) -> Engine:
    bind: Engine = sessions.kw["bind"]
    key = (os.getpid(), id(bind))  # a forked child makes its own connections
    with _GUARD:
        engine = _ENGINES.get(key)
        if engine is None:
            engine = _ENGINES[key] = create_engine(
                bind.url,
                isolation_level="AUTOCOMMIT",
                pool_size=bind.pool.size(),  # type: ignore[attr-defined]
                max_overflow=30,
                connect_args={"options": "-c synchronous_commit=off"},
            )
    return engine
