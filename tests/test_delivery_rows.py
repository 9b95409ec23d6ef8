"""Deliveries written many at once (`add_deliveries_as`, a fan-out batch): on PostgreSQL with
COPY, on SQLite one statement run for each; either way the rows read back as the plain INSERT of
each Delivery writes them, every column."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select

from gateway.core.runtime import Sessions
from gateway.core.values import columns
from gateway.core.vocabulary import Audience, DeliveryStatus
from gateway.outbound.queries import NewDelivery, add_deliveries_as, new_delivery_ids
from gateway.storage.db import transaction
from gateway.storage.tables import DELIVERIES
from tests.support.harness import database

NOW = datetime(2026, 12, 3, 9, 30, 15, 123456, tzinfo=UTC)


def delivery(n: int, **changes: Any) -> NewDelivery:
    base = NewDelivery(
        sr_id=None,
        raw_mail_id=None,
        template="sus_bulletin",
        audience=Audience.customer,
        language="en",
        recipient=f"reader{n}@example.com",
        context={"name": f'Zoë {n}\t\\ "q"', "items": [1, "two", None], "nested": {"ok": True}},
        message_id=f"<bulletin-{n}@securecall.example>",
        in_reply_to=None,
        references="",
        auto_submitted="auto-generated",
        queue="bulk",
        next_attempt_at=NOW,
        created_at=NOW,
        headers={"List-Id": "<fortigate.sus.securecall.example>", "Precedence": "bulk"},
        mail_from=f"bounces+{n}@securecall.example",
    )
    return replace(base, **changes)


@pytest.fixture(params=["sqlite_url", "postgres_url"])
def sessions(request: pytest.FixtureRequest) -> Iterator[Sessions]:
    with database(request.getfixturevalue(request.param)) as made:
        yield made


def test_deliveries_written_at_once_read_back_as_each_written_alone(sessions: Sessions) -> None:
    # Given Deliveries of several shapes: no headers, no sender, an enqueued one, a status given
    shapes = [
        delivery(1),
        delivery(2, headers=None, mail_from=None, context={}),
        delivery(3, enqueued_at=NOW + timedelta(seconds=1), status=DeliveryStatus.sent),
        delivery(4, in_reply_to="<orig@example.com>", references="<a@x>\n <b@y>", attempts=2),
    ]
    with transaction(sessions) as conn:
        ids = new_delivery_ids(conn, 2 * len(shapes))
        # When one set goes in at once and the same again one plain INSERT each
        add_deliveries_as(conn, list(zip(ids[: len(shapes)], shapes, strict=True)))
        for i, d in zip(ids[len(shapes) :], shapes, strict=True):
            values = columns(replace(d, message_id=d.message_id.replace("<", "<alone-")))
            conn.execute(insert(DELIVERIES), {"id": i, **values})
    with transaction(sessions, readonly=True) as conn:
        rows = conn.execute(select(DELIVERIES).order_by(DELIVERIES.c.id)).mappings().all()
    # Then each row of the first set is its twin of the second, column by column
    assert [r["id"] for r in rows] == ids
    for together, alone in zip(rows[: len(shapes)], rows[len(shapes) :], strict=True):
        assert together["message_id"].replace("<", "<alone-") == alone["message_id"]
        same = {k: v for k, v in together.items() if k not in ("id", "message_id")}
        assert same == {k: v for k, v in alone.items() if k not in ("id", "message_id")}
    assert rows[0]["context"]["name"] == 'Zoë 1\t\\ "q"'
    assert rows[0]["next_attempt_at"] == NOW
    assert rows[1]["headers"] is None
    assert rows[2]["status"] == "sent"
    assert rows[3]["references"] == "<a@x>\n <b@y>"
