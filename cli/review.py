"""`gateway review | quarantine`: what intake kept without opening anything."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from cli.choices import (
    ReviewStatus,
)
from cli.output import JsonFlag, fail, print_receipt, table
from cli.runtime import database, runtime
from gateway.intake import listings as held_listings
from gateway.intake.held import dismiss_held, release_held, retry_quarantined
from gateway.intake.receipts import NotHeld, NotQuarantined, TemporaryFailure

review = typer.Typer(no_args_is_help=True, help="Mail that opened nothing: the review queue.")
quarantine = typer.Typer(no_args_is_help=True, help="Mail that could not be processed, kept.")
GROUPS = (
    (review, "review"),
    (quarantine, "quarantine"),
)


@review.command("list")
def review_list(
    status: Annotated[ReviewStatus, typer.Option(case_sensitive=False)] = ReviewStatus.review,
    limit: int = 200,
    as_json: JsonFlag = False,
) -> None:
    """Mail that opened nothing: unregistered senders, automatic mail, strangers' replies."""
    with database(writes=False) as (session, _rt):
        rows = held_listings.held_mails(session, status=status, limit=limit)
    table(rows, as_json, ("id", "received_at", "from", "subject", "reason"))


@review.command("show")
def review_show(stored_id: int, as_json: JsonFlag = False) -> None:
    """One held mail: envelope, reason, the sender's verdict, headers and text."""
    with database(writes=False) as (session, _rt):
        shown = held_listings.held_mail(session, stored_id)
    if shown is None:
        raise fail(f"no stored mail {stored_id}")
    if as_json:
        typer.echo(json.dumps(shown, indent=2, ensure_ascii=False))
        return
    for key in ("id", "status", "reason", "received_at", "source", "mail_from", "from", "subject"):
        typer.echo(f"{key:12} {shown[key]}")
    verdict = shown["authentication"] or {"source": "none"}
    checks = " ".join(f"{k}={verdict.get(k, 'none')}" for k in ("spf", "dkim", "dmarc", "arc"))
    source = verdict.get("source", "none")
    typer.echo(f"{'verdict':12} " + (f"{checks} ({source})" if source != "none" else "none"))
    typer.echo("\n" + shown["headers"])
    typer.echo(shown["text"])
    for a in shown["attachments"]:
        typer.echo(f"  [{a['filename']} {a['size']} bytes]")


@review.command("release")
def review_release(stored_id: int, as_json: JsonFlag = False) -> None:
    """Run a held mail through intake again, with today's directory and policies.

    For a sender added as a contact since, or a domain policy changed: the mail then opens or
    updates its SR as if it had just arrived. A mail that would be held again stays as it was.
    """
    with runtime() as rt:
        try:
            receipt = release_held(stored_id, rt)
        except NotHeld as exc:
            raise fail(str(exc)) from None
        except TemporaryFailure as exc:
            raise fail(f"{exc}; try again later") from None
        finally:
            rt.outbox.broker.close()
    print_receipt(receipt, as_json)
    if receipt.held:
        raise typer.Exit(1)


@review.command("dismiss")
def review_dismiss(stored_id: int, as_json: JsonFlag = False) -> None:
    """Mark a held mail as looked at and let be: status `dismissed` (kept, not deleted)."""
    with runtime(broker=False) as rt:
        try:
            dismiss_held(stored_id, rt)
        except NotHeld as exc:
            raise fail(str(exc)) from None
    result = {"stored_id": stored_id, "status": "dismissed"}
    typer.echo(json.dumps(result, indent=2) if as_json else f"mail {stored_id} dismissed")


@quarantine.command("list")
def quarantine_list(limit: int = 200, as_json: JsonFlag = False) -> None:
    """Mail that could not be processed (R6.3): kept whole, with the reason."""
    review_list(status=ReviewStatus.quarantined, limit=limit, as_json=as_json)


@quarantine.command("show")
def quarantine_show(stored_id: int, as_json: JsonFlag = False) -> None:
    """One quarantined (or any stored) mail: envelope, reason, headers, parse defects."""
    with database(writes=False) as (session, _rt):
        shown = held_listings.stored_mail(session, stored_id)
    if shown is None:
        raise fail(f"no stored mail {stored_id}")
    if as_json:
        typer.echo(json.dumps(shown, indent=2, ensure_ascii=False))
        return
    for key in (
        "id",
        "status",
        "reason",
        "received_at",
        "source",
        "mail_from",
        "from",
        "subject",
        "size",
    ):
        typer.echo(f"{key:12} {shown[key]}")
    typer.echo("\n" + shown["headers"])
    for defect in shown["defects"]:
        typer.echo(f"defect: {defect}")


@quarantine.command("retry")
def quarantine_retry(stored_id: int, as_json: JsonFlag = False) -> None:
    """Run a quarantined mail through intake again; on success it leaves the quarantine."""
    with runtime() as rt:
        try:
            receipt = retry_quarantined(stored_id, rt)
        except NotQuarantined as exc:
            raise fail(str(exc)) from None
        finally:
            rt.outbox.broker.close()
    print_receipt(receipt, as_json)
    if receipt.outcome == "quarantined":
        raise typer.Exit(1)
