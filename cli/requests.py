"""`gateway requests | escalations`: service Requests and their escalations, as stored.

Each command imports the listing it shows when it runs.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from cli.choices import (
    State,
)
from cli.output import JsonFlag, fail, table
from cli.runtime import database

requests = typer.Typer(no_args_is_help=True, help="Service Requests.")
escalations = typer.Typer(no_args_is_help=True, help="Escalations and their steps (§3.5.5).")
GROUPS = (
    (requests, "requests"),
    (escalations, "escalations"),
)


@requests.command("list")
def requests_list(
    state: Annotated[State | None, typer.Option(case_sensitive=False)] = None,
    limit: int = 200,
    as_json: JsonFlag = False,
) -> None:
    """List Service Requests, newest first."""
    from gateway.requests import listings as request_listings

    with database(writes=False) as (session, _rt):
        rows = request_listings.requests(session, state=state, limit=limit)
    table(rows, as_json, ("id", "priority", "state", "customer", "requester", "title"))


@requests.command("show")
def requests_show(sr_id: str, as_json: JsonFlag = False) -> None:
    """Show one SR: its messages (full and stripped text, attachments) and deliveries."""
    from gateway.requests import listings as request_listings

    with database(writes=False) as (session, _rt):
        shown = request_listings.request(session, sr_id)
    if shown is None:
        raise fail(f"no Service Request {sr_id}")
    if as_json:
        typer.echo(json.dumps(shown, indent=2, ensure_ascii=False))
        return
    typer.echo(f"{shown['id']}  P{shown['priority']}  {shown['state']}  {shown['title']}")
    typer.echo(
        f"customer {shown['customer']}, requester {shown['requester']}, "
        f"type {shown['type']}, opened {shown['created_at']}"
    )
    for message in shown["messages"]:
        typer.echo(f"\n--- {message['received_at']} {message['from']} ({message['author']})")
        typer.echo(message["reply_text"])
        for a in message["attachments"]:
            typer.echo(f"  [{a['filename']} {a['size']} bytes sha256 {a['sha256'][:16]}…]")
    for d in shown["deliveries"]:
        typer.echo(f"\n>>> {d['template']} to {d['to']}: {d['status']} {d['sent_at'] or ''}")


@escalations.command("list")
def escalations_list(
    open_only: Annotated[bool, typer.Option("--open", help="Only those still open.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Every escalation with its steps, newest first."""
    from gateway.sla import listings as escalation_listings

    with database(writes=False) as (session, _rt):
        rows = escalation_listings.escalations(session, open_only=open_only)
    table(rows, as_json, ("sr_id", "level", "source", "requested_by", "opened_at", "closed_at"))
