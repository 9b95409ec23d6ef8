"""Engines and sessions for SQLite (embedded) and PostgreSQL; the schema migrates on first use."""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"
_PG_MIGRATION_LOCK = 7_231_001  # pg_advisory_lock key: one migrator at a time

Sessions = sessionmaker[Session]


def database_url(url: str) -> URL:
    """The URL with the driver this project uses (psycopg 3 for PostgreSQL)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    parsed = database_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            parsed,
            pool_size=pool_size,
            max_overflow=30,
            pool_timeout=60,
            connect_args={"factory": _SerialConnection, "check_same_thread": False},
        )
        _sqlite_pragmas(engine)
        return engine
    return create_engine(parsed, pool_size=pool_size, max_overflow=30, pool_pre_ping=True)


_WRITE_LOCKS: dict[str, threading.Lock] = {}
_WRITE_LOCKS_GUARD = threading.Lock()
WRITE_LOCK_TIMEOUT = 60.0


def _write_lock(database: str) -> threading.Lock:
    with _WRITE_LOCKS_GUARD:
        return _WRITE_LOCKS.setdefault(database, threading.Lock())


class _SerialConnection(sqlite3.Connection):
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


class _Checkpointer(threading.Thread):
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

    _running: ClassVar[dict[str, _Checkpointer]] = {}
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


def _sqlite_file(engine: Engine) -> str | None:
    """The absolute path of an engine's SQLite file; None for PostgreSQL and :memory:."""
    if engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:"):
        return None
    return str(Path(engine.url.database or "").resolve())


def close(sessions: Sessions) -> None:
    """A clean stop: on SQLite the WAL is copied into the database file and emptied (TRUNCATE),
    so that the file alone is a complete copy; then every pooled connection is closed.

    The background checkpointer is ended first, so that nothing opens the WAL again afterwards.
    """
    engine = sessions.kw["bind"]
    database = _sqlite_file(engine)
    if database is not None and os.path.exists(database):
        _Checkpointer.stop_for(database)
        conn = sqlite3.connect(database, timeout=10.0, isolation_level=None)
        try:
            busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if busy:  # another process is reading or writing: its own stop will finish the copy
                log.info("WAL of %s still in use; checkpointed as far as it could", database)
        except sqlite3.Error as exc:
            log.warning("final checkpoint of %s failed: %s", database, exc)
        finally:
            conn.close()
    engine.dispose()


def _sqlite_pragmas(engine: Engine) -> None:
    database = str(Path(engine.url.database or ":memory:").resolve())

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # transactions are begun below, not by pysqlite
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")  # R6.2: 250 only after the commit is on disk
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.execute("PRAGMA foreign_keys=ON")
        # Checkpoints run in the background (_Checkpointer); a commit checkpoints itself only if
        # the WAL has grown past this many pages, as a safety net when no checkpointer runs.
        cursor.execute(f"PRAGMA wal_autocheckpoint={_SAFETY_CHECKPOINT_PAGES}")
        cursor.close()
        if engine.url.database not in (None, "", ":memory:"):
            _Checkpointer.start_for(database)  # the file exists now: it ends when the file goes

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        # Take the write lock up front: no deadlock when two readers both want to write.
        options = conn.get_execution_options()
        if options.get("readonly", False):
            conn.connection.dbapi_connection.begin_read()
            return
        conn.connection.dbapi_connection.begin_write(database, options.get("durable", True))


def make_sessions(engine: Engine) -> Sessions:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(
    sessions: Sessions, *, durable: bool = True, readonly: bool = False
) -> Iterator[Connection]:
    """One transaction, for Core statements: committed on success, rolled back on error.

    `readonly=True` only reads: on SQLite it takes no write lock (readers never wait in WAL mode).
    `durable=False` commits without waiting for the disk (SQLite: no fsync; PostgreSQL:
    synchronous_commit off). A process crash loses nothing either way; a power loss may undo
    the last such commits. For bookkeeping whose loss only repeats work (a Delivery's claim or
    "sent" mark), never for accepting mail.
    """
    with sessions.begin() as session:
        conn = session.connection(execution_options={"durable": durable, "readonly": readonly})
        if conn.dialect.name == "postgresql":
            if readonly:
                conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            elif not durable:
                conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
        yield conn


def alembic_config(engine: Engine | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if engine is not None:
        config.set_main_option(
            "sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%")
        )
    return config


def migrate(engine: Engine) -> None:
    """Create or upgrade the schema to the newest revision; safe when several processes start."""
    config = alembic_config(engine)
    with _migration_lock(engine) as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[Any]:
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
            connection.commit()
            try:
                yield connection
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_MIGRATION_LOCK})
                connection.commit()
        return
    database = engine.url.database or ""
    lock_path = Path(f"{database}.migrate.lock") if database not in ("", ":memory:") else None
    if lock_path is None:
        with engine.connect() as connection:
            yield connection
        return
    with lock_path.open("a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            with engine.connect() as connection:
                yield connection
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)
