"""Engines and sessions for SQLite (embedded) and PostgreSQL; the schema migrates on first use."""

from __future__ import annotations

import fcntl
import logging
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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
            with _WRITE_LOCKS_GUARD:
                self._lock = _WRITE_LOCKS.setdefault(database, threading.Lock())
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


def _sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # transactions are begun below, not by pysqlite
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")  # R6.2: 250 only after the commit is on disk
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    database = str(Path(engine.url.database or ":memory:").resolve())

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
