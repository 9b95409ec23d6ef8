"""`gateway subscriptions`: the Support Update Service's subscriptions (§3.8, R4.2–R4.4) as the
admins manage them. Every change is in the audit trail by the admin (GATEWAY_ADMIN_NAME, else
`cli:<Unix user>`), how `cli`."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import track
from sqlalchemy.orm import Session

from cli.output import JsonFlag, fail, table
from cli.runtime import database, runtime
from gateway.storage.db import transaction
from gateway.sus import admin, approvals, listings
from gateway.sus.requests import RequestError
from gateway.sus.vocabulary import Change, How, SubscriptionError, SubscriptionState

subscriptions = typer.Typer(
    no_args_is_help=True, help="Support Update Service subscriptions (§3.8)."
)
GROUPS = ((subscriptions, "subscriptions"),)
Product = Annotated[str, typer.Option("--product", help="The product's name.")]


@subscriptions.command("add")
def subscriptions_add(
    email: str,
    product: Product,
    kind: Annotated[str | None, typer.Option(help="patch,upgrade,bulletin (default: all)")] = None,
) -> None:
    """Subscribe a contact to a product of its customer (active at once)."""
    with _admin_session() as (session, change):
        found, changed = admin.add(session, email, product, kind, change)
        kinds = ",".join(found.kinds)
    typer.echo(f"{email} {'subscribed' if changed else 'already subscribed'}: {product} ({kinds})")


@subscriptions.command("remove")
def subscriptions_remove(email: str, product: Product) -> None:
    """Unsubscribe a contact from a product, at once (R4.3)."""
    with _admin_session() as (session, change):
        changed = admin.remove(session, email, product, change)
    typer.echo(f"{email} {'unsubscribed' if changed else 'was not subscribed'}: {product}")


@subscriptions.command("resume")
def subscriptions_resume(email: str, product: Product) -> None:
    """Resume a subscription suspended for bounces (R4.4); its score starts afresh."""
    with _admin_session() as (session, change):
        admin.resume(session, email, product, change)
    typer.echo(f"{email} resumed: {product}")


@subscriptions.command("list")
def subscriptions_list(
    product: Annotated[str | None, typer.Option(help="Only this product's.")] = None,
    state: Annotated[SubscriptionState | None, typer.Option(case_sensitive=False)] = None,
    as_json: JsonFlag = False,
) -> None:
    """List subscriptions."""
    with database(writes=False) as (session, _rt):
        rows = listings.subscriptions(session, product, state)
    table(rows, as_json, ("email", "customer", "product", "kinds", "state", "bounce_score"))


@subscriptions.command("history")
def subscriptions_history(
    email: Annotated[str | None, typer.Argument(help="Only this contact's.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """The audit trail: every change, who made it and how (R4.2)."""
    with database(writes=False) as (session, _rt):
        rows = listings.history(session, email)
    columns = ("at", "email", "product", "from", "to", "by", "how", "message_id")
    table(rows, as_json, columns)


@subscriptions.command("import")
def subscriptions_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    as_json: JsonFlag = False,
) -> None:
    """Import subscriptions from a CSV file with columns email, product, kinds."""
    with _admin_session() as (session, change):
        rows = admin.rows_of(file.read_text("utf-8-sig"))
        summary = admin.ImportSummary()
        shown = track(rows, description="importing") if sys.stdout.isatty() else rows
        for line, row in shown:
            admin.import_row(session, line, row, change, summary)
    result = {"added": summary.added, "unchanged": summary.unchanged, "refused": summary.refused}
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    else:
        typer.echo(
            f"{summary.added} added, {summary.unchanged} unchanged, {len(summary.refused)} refused"
        )
        for refusal in summary.refused:
            typer.echo(f"  {refusal}", err=True)
    if summary.refused:
        raise typer.Exit(1)


@subscriptions.command("requests")
def subscriptions_requests(
    every: Annotated[bool, typer.Option("--all", help="Decided ones too.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Requests by mail waiting for an admin (with --all, every request)."""
    with database(writes=False) as (session, _rt):
        rows = listings.requests(session, every)
    table(rows, as_json, ("id", "email", "customer", "action", "products", "state", "created_at"))


@subscriptions.command("approve")
def subscriptions_approve(request_id: int) -> None:
    """Approve a pending request: its subscriptions become active; the contact is told."""
    _decide(request_id, True, "")


@subscriptions.command("deny")
def subscriptions_deny(
    request_id: int,
    reason: Annotated[str, typer.Option(help="Why; the contact is told.")],
) -> None:
    """Deny a pending request; the contact is told why."""
    if not reason.strip():
        raise fail("--reason must say why: the contact is told")
    _decide(request_id, False, reason.strip())


def _decide(request_id: int, approve: bool, reason: str) -> None:
    with runtime() as rt:
        change = Change(admin.admin_of(rt.settings), How.cli, rt.now())
        try:
            with transaction(rt.sessions) as conn:
                done, mails = approvals.decide(conn, rt, request_id, approve, change, reason)
        except (RequestError, SubscriptionError) as exc:
            raise fail(str(exc)) from None
        rt.outbox.enqueue(mails)  # after the commit; the sweep sends it if no broker takes it
    typer.echo(done)


@contextmanager
def _admin_session() -> Iterator[tuple[Session, Change]]:
    """A session, and the admin's Change; a change that cannot be made is one line (exit 2),
    everything of the command rolled back."""
    try:
        with database() as (session, rt):
            yield session, Change(admin.admin_of(rt.settings), How.cli, rt.now())
    except SubscriptionError as exc:
        raise fail(str(exc)) from None
