"""Bookkeeping on PostgreSQL in one round trip: a single statement that commits itself.

A Delivery's claim or "sent" mark, made once for each mail sent, is one UPDATE whose loss only
repeats work. In a transaction of the pool it took five round trips, each waited for by the
worker thread between two rounds of mail: the pool's ping, BEGIN, SET LOCAL synchronous_commit,
the statement, COMMIT. Here it runs on a connection of a pool of its own, in autocommit and with
synchronous_commit off for the whole session, and without the ping: one round trip. A connection
the server has dropped (a restart) fails its statement and is replaced. A read is then run once
more on the new one; a write is not, for it may have been done before its answer was lost (a
"sent" mark done twice would find nothing left to mark, and its mail would never be ended): it
fails, and its mail stays for a retry, as a mark that fails always did. Each process keeps this
pool beside the gateway's own: up to twice the connections to PostgreSQL.

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
# (process, the sessions' engine's id) -> that engine and this pool of its own
_ENGINES: dict[tuple[int, int], tuple[Engine, Engine]] = {}
_GUARD = threading.Lock()


def applies(sessions: Sessions) -> bool:
    """Whether the sessions' database is PostgreSQL, where `run` is what bookkeeping uses."""
    engine: Engine = sessions.kw["bind"]
    return engine.dialect.name == "postgresql"


def run(sessions: Sessions, step: Callable[[Connection], T], *, reads: bool = False) -> T:
    """`step` (one statement) committed by itself, not waiting for the disk; its result.
    `reads`: it only reads, and is run again on a new connection when its own was dropped."""
    engine = _engine(sessions)
    try:
        with engine.connect() as conn:
            return step(conn)
    except DBAPIError as exc:
        if not (reads and exc.connection_invalidated):
            raise
    with engine.connect() as conn:  # the dropped connection is gone from the pool
        return step(conn)


def dispose(sessions: Sessions) -> None:
    """Close this process's pool for the sessions' database (at a clean stop)."""
    with _GUARD:
        kept = _ENGINES.pop((os.getpid(), id(sessions.kw["bind"])), None)
    if kept is not None:
        kept[1].dispose()


def _engine(sessions: Sessions) -> Engine:
    bind: Engine = sessions.kw["bind"]
    key = (os.getpid(), id(bind))  # a forked child makes its own connections
    with _GUARD:
        kept = _ENGINES.get(key)
        if kept is None or kept[0] is not bind:  # (the bind is kept: its id is not reused)
            options = [bind.url.query.get("options"), os.environ.get("PGOPTIONS")]
            given = " ".join(o for o in options if isinstance(o, str) and o)  # kept, not replaced
            kept = _ENGINES[key] = (
                bind,
                create_engine(
                    bind.url,
                    isolation_level="AUTOCOMMIT",
                    pool_size=bind.pool.size(),  # type: ignore[attr-defined]
                    max_overflow=30,
                    connect_args={"options": f"{given} -c synchronous_commit=off".strip()},
                ),
            )
    return kept[1]
