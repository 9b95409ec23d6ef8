"""SQLite, the embedded default: one writer at a time, WAL checkpoints off the commit path.

The connection class and the checkpointer are attached to an engine by `attach` (storage/db.py).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import Engine, event

log = logging.getLogger(__name__)


_WRITE_LOCKS: dict[str, threading.Lock] = {}
_WRITE_LOCKS_GUARD = threading.Lock()
WRITE_LOCK_TIMEOUT = 60.0


def _write_lock(database: str) -> threading.Lock:
    with _WRITE_LOCKS_GUARD:
        return _WRITE_LOCKS.setdefault(database, threading.Lock())


class SerialConnection(sqlite3.Connection):
    """A SQLite connection that takes its database's in-process write lock around a transaction.

    SQLite allows one writer. Left to SQLite, threads waiting for the lock poll it with sleeps
    of 1, 2, 5 … 100 ms; with a dozen intake and worker threads that waiting, not the work,
    bounded throughput. A threading.Lock hands the database over the moment it is free. Other
    processes on the same file still wait through SQLite's busy timeout.
    """

    _lock: threading.Lock | None = None
    _holding = False

    def begin_read(self) -> None:
        """A reader: a deferred transaction, no lock (in WAL mode it never waits for a writer)."""
        self.execute("BEGIN")

    def begin_write(self, database: str, durable: bool = True) -> None:
        if self._lock is None:
            self._lock = _write_lock(database)
        if not self._lock.acquire(timeout=WRITE_LOCK_TIMEOUT):
            raise sqlite3.OperationalError("database is locked (in-process write lock)")
        self._holding = True
        try:
            self.execute("PRAGMA synchronous=FULL" if durable else "PRAGMA synchronous=NORMAL")
            self.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._release()
            raise

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self._release()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._release()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._release()

    def _release(self) -> None:
        if self._holding and self._lock is not None:
            self._holding = False
            self._lock.release()


_SAFETY_CHECKPOINT_PAGES = 10_000  # ~40 MB of WAL
CHECKPOINT_WAL_BYTES = 1024 * 1024  # a WAL smaller than this is left alone
CHECKPOINT_PERIOD = 0.25
RESTART_FRAMES = 2_000  # ~8 MB: past this the WAL is brought back to its beginning


class Checkpointer(threading.Thread):
    """Copies a SQLite database's WAL into the database file, outside the write lock.

    Left to SQLite, the commit that pushes the WAL past 1,000 pages copies it back and fsyncs the
    database file while it still holds the write lock; under steady intake those commits took
    up to a second and every mail behind them waited. Here a thread of its own, on a connection
    of its own, runs a PASSIVE checkpoint (it blocks neither writers nor readers) four times a
    second. Writers keep appending while it copies, so the WAL is never found fully copied and
    never starts over; once it is past RESTART_FRAMES, the few frames left are copied holding the
    write lock, and the next writer starts the WAL from its beginning. One per database file and
    process; it ends when the file is gone.
    """

    _running: ClassVar[dict[str, Checkpointer]] = {}
    _guard = threading.Lock()

    def __init__(self, database: str) -> None:
        super().__init__(name=f"checkpoint {Path(database).name}", daemon=True)
        self.database = database
        self.wal = f"{database}-wal"
        self.stopped = threading.Event()

    @classmethod
    def start_for(cls, database: str) -> None:
        with cls._guard:
            running = cls._running.get(database)
            if running is not None and running.is_alive():
                return
            cls._running[database] = checkpointer = cls(database)
        checkpointer.start()

    @classmethod
    def stop_for(cls, database: str) -> None:
        """End the database's checkpointer, and wait until it has closed its connection."""
        with cls._guard:
            running = cls._running.pop(database, None)
        if running is not None:
            running.stopped.set()
            running.join(timeout=10)

    def run(self) -> None:
        try:
            while not self.stopped.is_set() and os.path.exists(self.database):
                try:
                    if os.path.getsize(self.wal) >= CHECKPOINT_WAL_BYTES:
                        self.checkpoint()
                except OSError:
                    pass  # no WAL yet, or it was just removed by the last connection closing
                except sqlite3.Error as exc:
                    log.warning("background checkpoint of %s failed: %s", self.database, exc)
                self.stopped.wait(CHECKPOINT_PERIOD)
        finally:
            with self._guard:
                if self._running.get(self.database) is self:
                    del self._running[self.database]

    def checkpoint(self) -> None:
        conn = sqlite3.connect(self.database, timeout=1.0, isolation_level=None)
        try:
            _, frames, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            lock = _write_lock(self.database)
            if frames >= RESTART_FRAMES and lock.acquire(timeout=1.0):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                finally:
                    lock.release()
        finally:
            conn.close()


def sqlite_file(engine: Engine) -> str | None:
    """The absolute path of an engine's SQLite file; None for PostgreSQL and :memory:."""
    if engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:"):
        return None
    return str(Path(engine.url.database or "").resolve())


def attach(engine: Engine) -> None:
    database = str(Path(engine.url.database or ":memory:").resolve())

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # transactions are begun below, not by pysqlite
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")  # R6.2: 250 only after the commit is on disk
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.execute("PRAGMA foreign_keys=ON")
        # Checkpoints run in the background (Checkpointer); a commit checkpoints itself only if
        # the WAL has grown past this many pages, as a safety net when no checkpointer runs.
        cursor.execute(f"PRAGMA wal_autocheckpoint={_SAFETY_CHECKPOINT_PAGES}")
        cursor.close()
        if engine.url.database not in (None, "", ":memory:"):
            Checkpointer.start_for(database)  # the file exists now: it ends when the file goes

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        # Take the write lock up front: no deadlock when two readers both want to write.
        options = conn.get_execution_options()
        if options.get("readonly", False):
            conn.connection.dbapi_connection.begin_read()
            return
        conn.connection.dbapi_connection.begin_write(database, options.get("durable", True))
