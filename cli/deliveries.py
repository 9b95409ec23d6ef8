"""`gateway deliveries`: outgoing mail: the outbox."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.choices import (
    DeliveryStatus,
)
from cli.output import JsonFlag, table
from cli.runtime import database
from gateway.outbound import listings as delivery_listings

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
