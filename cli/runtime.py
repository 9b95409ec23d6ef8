"""How a command gets its settings, its runtime and a database session; a problem is one line.

At the end of every command SQLite's WAL is emptied and the engine disposed (storage/db.py). A
command that only reads says so (`writes=False`): it never migrates a schema that is behind,
and one at the newest revision costs it no migration check beyond reading that revision.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer

from cli.output import fail
from gateway.core.settings import ConfigError, Settings, load
from gateway.observe import logs

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from gateway.core.runtime import Runtime


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
def runtime(
    settings: Settings | None = None,
    *,
    broker: bool = True,
    writes: bool = True,
    serving: bool = False,
) -> Iterator[Runtime]:
    """The runtime of one command; at its end SQLite's WAL is emptied and the engine disposed.

    The collector is turned back on here (cli/__init__.py), or, `serving`, once the long-running
    parts have been started and imported what they need (cli/serve.py `Services.start`)."""
    from sqlalchemy.exc import OperationalError

    from gateway.assembly import build
    from gateway.outbound.outbox import Outbox, make_broker
    from gateway.storage import db

    settings = configured() if settings is None else settings
    try:
        rt = build(settings, outbox=None if broker else Outbox(make_broker("")), writes=writes)
    except db.SchemaBehind as exc:
        raise fail(str(exc)) from None
    except (ValueError, OperationalError) as exc:
        raise fail(f"cannot start: {exc}") from None
    if not serving:
        gc.freeze()  # what start-up built lives as long as the command
        gc.enable()
    try:
        yield rt
    finally:
        db.close(rt.sessions)


@contextmanager
def database(*, writes: bool = True) -> Iterator[tuple[Session, Runtime]]:
    with runtime(broker=False, writes=writes) as rt:
        try:
            with rt.sessions.begin() as session:
                yield session, rt
        except _directory_errors() as exc:
            raise fail(str(exc)) from exc


def _directory_errors() -> tuple[type[Exception], ...]:
    """DirectoryError, once gateway.directory is loaded (only then can one be raised): a command
    that does not change the directory does not import it for its `except`."""
    checks = sys.modules.get("gateway.directory.checks")
    return (checks.DirectoryError,) if checks is not None else ()
