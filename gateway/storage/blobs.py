"""Large values (a raw mail, an attachment) written into SQLite in pieces, never bound whole.

Bound as a parameter, a 30 MB value is copied by the driver and again into SQLite's record
before it reaches the pages: three copies of it at once. Inserted as zeroblob(n) and then
written through SQLite's incremental blob I/O (sqlite3 `blobopen`), it is read from the caller's
bytes a block at a time. Other databases get the value bound as before.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Insert, Table, bindparam, func

STREAMED = 1024 * 1024  # values larger than this go in pieces
BLOCK = 1024 * 1024


def streamed(conn: Connection, data: bytes) -> bool:
    return len(data) > STREAMED and conn.dialect.name == "sqlite"


def placeholder(statement: Insert, column: str) -> Insert:
    """`statement` with `column` set to zeroblob(:blob_size), to be filled by `write`."""
    return statement.values({column: func.zeroblob(bindparam("blob_size"))})


def insert_streamed(
    conn: Connection, statement: Insert, table: Table, column: str, values: dict[str, Any]
) -> int:
    """Insert a row whose `column` holds `values[column]`, written in pieces; its id."""
    data: bytes = values[column]
    params = {k: v for k, v in values.items() if k != column} | {"blob_size": len(data)}
    row_id = int(conn.execute(statement, params).scalar_one())
    dbapi: Any = conn.connection.dbapi_connection
    view = memoryview(data)
    with dbapi.blobopen(table.name, column, row_id) as blob:
        for start in range(0, len(view), BLOCK):
            blob.write(view[start : start + BLOCK])
    return row_id
