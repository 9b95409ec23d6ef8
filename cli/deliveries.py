"""`gateway deliveries`: outgoing mail: the outbox."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.choices import (
    DeliveryStatus,
)
from cli.output import JsonFlag, fail, table
from cli.runtime import database, runtime
from gateway.outbound import listings as delivery_listings
from gateway.outbound.retries import NotFailed, retry_failed
from gateway.storage.db import transaction
from gateway.sus.admin import admin_of

deliveries = typer.Typer(no_args_is_help=True, help="Outgoing mail (the outbox).")
GROUPS = ((deliveries, "deliveries"),)


@deliveries.command("list")
def deliveries_list(
    status: Annotated[DeliveryStatus | None, typer.Option(case_sensitive=False)] = None,
    limit: int = 200,
    as_json: JsonFlag = False,
) -> None:
    """Outgoing mail, newest first."""
    with database(writes=False) as (session, _rt):
        rows = delivery_listings.deliveries(session, status=status, limit=limit)
    table(rows, as_json, ("id", "template", "to", "status", "attempts", "sent_at"))


@deliveries.command("retry")
def deliveries_retry(delivery_id: int) -> None:
    """Send a failed Delivery again: pending now, its attempts counted afresh."""
    with runtime() as rt:
        try:
            with transaction(rt.sessions) as conn:
                again = retry_failed(conn, delivery_id, rt.now(), admin_of(rt.settings))
        except NotFailed as exc:
            raise fail(str(exc)) from None
        rt.outbox.enqueue([again])  # after the commit; the sweep sends it if no broker takes it
        rt.outbox.broker.close()
    typer.echo(f"delivery {delivery_id} pending again")
