"""The migrations build exactly the schema the models describe, on SQLite and on PostgreSQL;
commands migrate a schema only when it is not the newest, and only commands that write."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from typer.testing import CliRunner

from cli.app import app
from gateway.storage import db
from gateway.storage.db import alembic_config, make_engine
from gateway.storage.models import Base


@pytest.mark.parametrize("database", ["sqlite_url", "postgres_url"])
def test_migrated_schema_matches_the_models(database: str, request: pytest.FixtureRequest) -> None:
    engine = make_engine(request.getfixturevalue(database))
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    assert differences == []


def test_upgrading_a_database_with_data_keeps_its_deadlines_running(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    config = alembic_config(engine)
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
        connection.execute(
            text(
                "INSERT INTO customers (id, name, timezone, country, created_at) "
                "VALUES (1, 'C', 'Europe/Berlin', 'DE', '2026-11-18 09:00:00')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO service_requests (id, public_id, customer_id, title, type, priority, "
                "requested_reason, state, language, entitlement, created_at, updated_at) VALUES "
                "(1, 'SR-AAAA-BBBB', 1, 't', 'incident', 3, '', 'open', 'en', '{}', "
                "'2026-11-18 09:00:00', '2026-11-18 09:00:00')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO deadlines (id, sr_id, kind, due_at, met_at, created_at) VALUES "
                "(1, 1, 'initial_response', '2026-11-19 09:00:00', NULL, '2026-11-18 09:00:00'), "
                "(2, 1, 'initial_response', '2026-11-19 09:00:00', '2026-11-18 10:00:00', "
                "'2026-11-18 09:00:00')"
            )
        )
        connection.commit()
        command.upgrade(config, "head")
        rows = connection.execute(
            text("SELECT id, started_at, next_at FROM deadlines ORDER BY id")
        ).all()
    engine.dispose()
    assert [(r.id, r.started_at[:19], r.next_at and r.next_at[:19]) for r in rows] == [
        (1, "2026-11-18 09:00:00", "2026-11-19 09:00:00"),
        (2, "2026-11-18 09:00:00", None),
    ]


def test_head_is_the_newest_migration() -> None:
    # A new migration in migrations/versions must move db.HEAD on: a database at the old HEAD
    # would otherwise be taken for current and never upgraded.
    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == db.HEAD


@pytest.fixture
def environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """GATEWAY_* for commands on the database file `cli.db`, in this process and in others."""
    values = {
        "GATEWAY_VAR_DIR": str(tmp_path / "var"),
        "GATEWAY_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "GATEWAY_CONFIG": "/nonexistent/gateway.toml",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


def gateway(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


def revision_of(url: str) -> tuple[str, ...]:
    engine = make_engine(url)
    try:
        return db.revision(engine)
    finally:
        engine.dispose()


def upgraded_to(url: str, revision: str) -> str:
    engine = make_engine(url)
    config = alembic_config(engine)
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    engine.dispose()
    return url


@pytest.mark.parametrize("database", ["sqlite_url", "postgres_url"])
def test_commands_on_a_current_schema_never_wait_for_the_migration_lock(
    database: str,
    request: pytest.FixtureRequest,
    environment: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a current schema, and the lock every migration takes held by someone else
    url = request.getfixturevalue(database)
    monkeypatch.setenv("GATEWAY_DATABASE_URL", url)
    env = {**os.environ, **environment, "GATEWAY_DATABASE_URL": url}
    engine = make_engine(url)
    with db._migration_lock(engine):
        # When a command that reads and one that writes run, each in a process of its own
        for args in (["requests", "list", "--json"], ["customers", "add", "Example Corp"]):
            result = subprocess.run(
                [sys.executable, "-m", "cli", *args],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,  # one that migrated would wait here for the lock: the test fails
                check=False,
            )
            # Then both have done their work without it
            assert result.returncode == 0, result.stderr
    engine.dispose()
    assert revision_of(url) == (db.HEAD,)
    assert '"name": "Example Corp"' in gateway("customers", "list", "--json")


def test_a_reading_command_refuses_a_schema_behind_and_leaves_it_as_it_is(
    environment: dict[str, str],
) -> None:
    url = upgraded_to(environment["GATEWAY_DATABASE_URL"], "0011")
    assert gateway("requests", "list", code=2) == (
        f"error: the database schema is at revision 0011, this gateway's is {db.HEAD}: "
        "run `gateway migrate` first\n"
    )
    assert revision_of(url) == ("0011",)


@pytest.mark.parametrize(
    "writing", [["migrate"], ["customers", "add", "Example Corp"]], ids=["migrate", "add"]
)
def test_a_writing_command_upgrades_a_schema_behind(
    writing: list[str], environment: dict[str, str]
) -> None:
    url = upgraded_to(environment["GATEWAY_DATABASE_URL"], "0011")
    gateway(*writing)
    assert revision_of(url) == (db.HEAD,)
    assert gateway("requests", "list", "--json") == "[]\n"


def test_a_new_database_is_made_on_first_use_even_by_a_reading_command(
    environment: dict[str, str],
) -> None:
    assert gateway("requests", "list", "--json") == "[]\n"
    assert revision_of(environment["GATEWAY_DATABASE_URL"]) == (db.HEAD,)
