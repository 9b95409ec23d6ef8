"""How a command gets its settings, its runtime and a database session; a problem is one line.

At the end of every command SQLite's WAL is emptied and the engine disposed (storage/db.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from cli.output import fail
from gateway import directory
from gateway.assembly import build
from gateway.core.runtime import Runtime
from gateway.core.settings import ConfigError, Settings, load
from gateway.observe import logs
from gateway.outbound.outbox import Outbox, make_broker
from gateway.storage import db


def configured() -> Settings:
    try:
        settings = load()
    except ConfigError as exc:
        *first, last = exc.problems
        for problem in first:
            typer.echo(f"error: invalid configuration: {problem}", err=True)
        raise fail(f"invalid configuration: {last}") from None
    logs.configure(settings.log_format)
    return settings


@contextmanager
def runtime(settings: Settings | None = None, *, broker: bool = True) -> Iterator[Runtime]:
    """The runtime of one command; at its end SQLite's WAL is emptied and the engine disposed."""
    settings = configured() if settings is None else settings
    try:
        rt = build(settings, outbox=None if broker else Outbox(make_broker("")))
    except (ValueError, OperationalError) as exc:
        raise fail(f"cannot start: {exc}") from None
    try:
        yield rt
    finally:
        db.close(rt.sessions)


@contextmanager
def database() -> Iterator[tuple[Session, Runtime]]:
    with runtime(broker=False) as rt:
        try:
            with rt.sessions.begin() as session:
                yield session, rt
        except directory.DirectoryError as exc:
            raise fail(str(exc)) from exc
