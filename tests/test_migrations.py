"""The migrations build exactly the schema the models describe, on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from gateway.db import make_engine
from gateway.models import Base


@pytest.mark.parametrize("database", ["sqlite_url", "postgres_url"])
def test_migrated_schema_matches_the_models(database: str, request: pytest.FixtureRequest) -> None:
    engine = make_engine(request.getfixturevalue(database))
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    assert differences == []
