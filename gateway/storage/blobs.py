"""Large values (a raw mail, an attachment) written into SQLite in pieces, never bound whole,
and a part of one read without reading the rest.

Bound as a parameter, a 30 MB value is copied by the driver and again into SQLite's record
before it reaches the pages: three copies of it at once. Inserted as zeroblob(n) and then
written through SQLite's incremental blob I/O (sqlite3 `blobopen`), it is read from the caller's
bytes a block at a time. SQLite keeps a zeroblob unbuilt only in the last column of a row: the
columns written so are the last of their tables. Other databases get the value bound as before.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Insert, Table, bindparam, func, select

LARGE = 1024 * 1024  # values larger than this go in pieces
BLOCK = 1024 * 1024


def streamed(conn: Connection, data: bytes) -> bool:
    """Whether `insert_large` writes this value in pieces."""
    return len(data) > LARGE and conn.dialect.name == "sqlite"


def insert_large(
    conn: Connection, statement: Insert, table: Table, column: str, values: dict[str, Any]
) -> int:
    """Run `statement` (an INSERT returning the row's id) for `values`; `values[column]`, the
    last column of `table`, is written in pieces on SQLite."""
    data: bytes = values[column]
    if not streamed(conn, data):
        return int(conn.execute(statement, values).scalar_one())
    placeholder = statement.values({column: func.zeroblob(bindparam("blob_size"))})
    params = {k: v for k, v in values.items() if k != column} | {"blob_size": len(data)}
    row_id = int(conn.execute(placeholder, params).scalar_one())
    dbapi: Any = conn.connection.dbapi_connection
    view = memoryview(data)
    with dbapi.blobopen(table.name, column, row_id) as blob:
        for start in range(0, len(view), BLOCK):
            blob.write(view[start : start + BLOCK])
    return row_id


def read_slice(
    conn: Connection, table: Table, column: str, row_id: int, start: int, length: int
) -> bytes:
    """Bytes start to start + length of the value in `column` of row `row_id` of `table`. On
    SQLite through incremental blob I/O, which reads only their pages (a SELECT would read the
    whole value into memory first); elsewhere cut out by the server."""
    if conn.dialect.name != "sqlite":
        cut = func.substr(table.c[column], start + 1, length)  # SQL counts from 1
        return bytes(conn.execute(select(cut).where(table.c.id == row_id)).scalar_one())
    dbapi: Any = conn.connection.dbapi_connection
    with dbapi.blobopen(table.name, column, row_id, readonly=True) as blob:
        blob.seek(start)
        return bytes(blob.read(length))
