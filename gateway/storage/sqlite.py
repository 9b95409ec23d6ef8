"""SQLite, the embedded default: one writer at a time, WAL checkpoints off the commit path.

The connection class and the checkpointer are attached to an engine by `attach` (storage/db.py).
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import Engine, event, exc

log = logging.getLogger(__name__)


WRITE_LOCK_TIMEOUT = 60.0


class WriteLock:
    """One database's write lock: a threading.Lock for this process's threads, then an exclusive
    flock on `<database>.write.lock` for the other processes on the same file.

    Left to SQLite, writers of several processes poll its lock with sleeps of 1, 2, 5 … 100 ms;
    flock hands the lock over the moment it is free, and the kernel releases it when its holder
    dies, however it dies. The flock is taken blocking: it has no timeout, and its holder only
    holds it for one transaction (the threads of a process queue on the threading.Lock, which
    has one). The file descriptor is opened again in a forked child: a shared descriptor would
    share its lock.
    """

    def __init__(self, path: str | None) -> None:
        self.threads = threading.Lock()
        self.path = path  # None: a database of one process (:memory:)
        self._fd = -1
        self._pid = 0

    def acquire(self, timeout: float) -> bool:
        if not self.threads.acquire(timeout=timeout):
            return False
        try:
            if self.path is not None:
                fcntl.flock(self._file(), fcntl.LOCK_EX)
        except BaseException:
            self.threads.release()
            raise
        return True

    def release(self) -> None:
        try:
            if self.path is not None and self._fd >= 0:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self.threads.release()

    def _file(self) -> int:
        if self._pid != os.getpid():
            assert self.path is not None
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._pid = os.getpid()
        return self._fd


_WRITE_LOCKS: dict[str, WriteLock] = {}
_WRITE_LOCKS_GUARD = threading.Lock()


def _write_lock(database: str) -> WriteLock:
    with _WRITE_LOCKS_GUARD:
        lock = _WRITE_LOCKS.get(database)
        if lock is None:
            shared = not database.endswith(":memory:") and os.path.isdir(os.path.dirname(database))
            lock = _WRITE_LOCKS[database] = WriteLock(f"{database}.write.lock" if shared else None)
        return lock


class SerialConnection(sqlite3.Connection):
    """A SQLite connection that takes its database's write lock (WriteLock) around a transaction.

    SQLite allows one writer. Left to SQLite, threads waiting for the lock poll it with sleeps
    of 1, 2, 5 … 100 ms; with a dozen intake and worker threads that waiting, not the work,
    bounded throughput. A threading.Lock hands the database over the moment it is free, and an
    flock does the same between the processes on one file (several listeners, `gateway web`).
    """

    _lock: WriteLock | None = None
    _holding = False

    def begin_read(self) -> None:
        """A reader: a deferred transaction, no lock (in WAL mode it never waits for a writer)."""
        self.execute("BEGIN")

    def begin_write(self, database: str, durable: bool = True) -> None:
        if self._lock is None:
            self._lock = _write_lock(database)
        if not self._lock.acquire(timeout=WRITE_LOCK_TIMEOUT):
            raise sqlite3.OperationalError("database is locked (write lock)")
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
    write lock, and the next writer starts the WAL from its beginning. One runs per database file
    and process, and only the one holding `<database>.checkpoint.lock` (a non-blocking flock,
    passed on when its process ends) checkpoints: several processes would only contend for
    SQLite's checkpoint lock. It ends when the file is gone.
    """

    _running: ClassVar[dict[str, Checkpointer]] = {}
    _guard = threading.Lock()

    def __init__(self, database: str) -> None:
        super().__init__(name=f"checkpoint {Path(database).name}", daemon=True)
        self.database = database
        self.wal = f"{database}-wal"
        self.stopped = threading.Event()
        self._elected = -1  # the checkpoint lock's descriptor, once this thread holds it

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
                    if os.path.getsize(self.wal) >= CHECKPOINT_WAL_BYTES and self.elected():
                        self.checkpoint()
                except OSError:
                    pass  # no WAL yet, or it was just removed by the last connection closing
                except sqlite3.Error as exc:
                    log.warning("background checkpoint of %s failed: %s", self.database, exc)
                self.stopped.wait(CHECKPOINT_PERIOD)
        finally:
            if self._elected >= 0:
                os.close(self._elected)  # the lock passes to another process's checkpointer
            with self._guard:
                if self._running.get(self.database) is self:
                    del self._running[self.database]

    def elected(self) -> bool:
        """True if this thread is the one of all processes on the file that checkpoints."""
        if self._elected >= 0:
            return True
        fd = os.open(
            f"{self.database}.checkpoint.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600
        )
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._elected = fd
        return True

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
        try:
            if options.get("readonly", False):
                conn.connection.dbapi_connection.begin_read()
                return
            conn.connection.dbapi_connection.begin_write(database, options.get("durable", True))
        except sqlite3.Error as error:
            # SQLAlchemy wraps what the driver raises in a statement, not in a listener: as its
            # own OperationalError, "database is locked" is the storage failure that may pass
            # (R6.6: 451 at SMTP), not a bug that quarantines the mail
            raise exc.OperationalError("BEGIN", None, error) from error
