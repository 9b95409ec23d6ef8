"""Engines and sessions for SQLite (embedded) and PostgreSQL; the schema migrates on first use.

Whether it needs to is known from the database's alembic_version and HEAD alone: alembic and
its script directory are loaded only when a migration runs.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, make_url, text
from sqlalchemy.engine import URL
from sqlalchemy.orm import sessionmaker

from gateway.core.runtime import Sessions
from gateway.storage import unwaited
from gateway.storage.sqlite import Checkpointer, SerialConnection, attach, sqlite_file

if TYPE_CHECKING:
    from alembic.config import Config

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"
# The newest revision in migrations/versions, the one this code reads and writes. A database at
# it needs no migration, and that is known without loading alembic; tests/test_migrations.py
# fails when a migration is added and HEAD is not moved on to it.
HEAD = "0015"
VERSION_TABLE = "alembic_version"  # alembic's default, where it keeps a database's revision
_PG_MIGRATION_LOCK = 7_231_001  # pg_advisory_lock key: one migrator at a time


class SchemaBehind(Exception):
    """The database's schema is not this gateway's (HEAD), and the caller only reads."""

    def __init__(self, found: tuple[str, ...]) -> None:
        at = ", ".join(found) or "none"
        super().__init__(
            f"the database schema is at revision {at}, this gateway's is {HEAD}: "
            "run `gateway migrate` first"
        )
        self.found = found


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
            connect_args={"factory": SerialConnection, "check_same_thread": False},
        )
        attach(engine)
        return engine
    return create_engine(parsed, pool_size=pool_size, max_overflow=30, pool_pre_ping=True)


def close(sessions: Sessions) -> None:
    """A clean stop: on SQLite the WAL is copied into the database file and emptied (TRUNCATE),
    so that the file alone is a complete copy; then every pooled connection is closed.

    The background checkpointer is ended first, so that nothing opens the WAL again afterwards.
    """
    engine = sessions.kw["bind"]
    unwaited.dispose(sessions)
    database = sqlite_file(engine)
    if database is not None and os.path.exists(database):
        Checkpointer.stop_for(database)
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
    engine: Engine = sessions.kw["bind"]
    # a Connection of the engine's pool, not an ORM Session: a third less time a transaction,
    # which counts for the marks made once per mail sent
    with engine.connect() as conn:
        conn.execution_options(durable=durable, readonly=readonly)
        with conn.begin():
            if conn.dialect.name == "postgresql":
                if readonly:
                    conn.exec_driver_sql("SET TRANSACTION READ ONLY")
                elif not durable:
                    conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
            yield conn


def alembic_config(engine: Engine | None = None) -> Config:
    from alembic.config import Config  # only to migrate: a second of imports for the rest

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if engine is not None:
        config.set_main_option(
            "sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%")
        )
    return config


def prepare(engine: Engine, *, writes: bool = True) -> None:
    """Make sure the schema is HEAD before anything else runs.

    A database that says it is at HEAD is used as it is: no alembic, no migration lock. A new
    one (no revision yet) is created whoever asks, as on first use. One at another revision is
    upgraded for a caller that `writes`; a caller that only reads waits for a migration running
    elsewhere and, if the schema is still not HEAD, is refused (SchemaBehind).
    """
    if revision(engine) == (HEAD,):
        return
    if writes:
        migrate(engine)
        return
    with _migration_lock(engine) as connection:
        found = _revision(connection)
    if found == ():
        migrate(engine)
    elif found != (HEAD,):
        raise SchemaBehind(found)


def revision(engine: Engine) -> tuple[str, ...]:
    """The database's schema revision, as alembic recorded it: () for a database without one.

    Read in a read-only transaction: on SQLite it waits for no writer.
    """
    with engine.connect() as connection:
        connection.execution_options(readonly=True)
        return _revision(connection)


def _revision(connection: Connection) -> tuple[str, ...]:
    if not connection.dialect.has_table(connection, VERSION_TABLE):
        return ()
    found = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars()
    return tuple(sorted(found))


def migrate(engine: Engine) -> None:
    """Create or upgrade the schema to the newest revision; safe when several processes start."""
    from alembic import command

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
