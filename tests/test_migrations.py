"""The migrations build exactly the schema the models describe, on SQLite and on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

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
