"""`gateway …`: run the gateway, or its parts at scale, and manage and read what it stores."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from cli.choices import (
    ContactRole,
    DeliveryStatus,
    Language,
    Policy,
    ReviewStatus,
    StaffRole,
    State,
)
from cli.serve import ListenError, Services, check_listen, run_until_signal
from gateway import db, demo, directory, listings, validators
from gateway.config import ConfigError, Settings, load
from gateway.intake import (
    NotHeld,
    NotQuarantined,
    Receipt,
    TemporaryFailure,
    dismiss_held,
    release_held,
    retry_quarantined,
)
from gateway.outbox import Outbox, in_process, make_broker
from gateway.runtime import Runtime, build

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
customers = typer.Typer(no_args_is_help=True, help="Customers (the contracting parties).")
contacts = typer.Typer(no_args_is_help=True, help="Contacts: who may open and update SRs.")
products = typer.Typer(no_args_is_help=True, help="Products and entitlements of a customer.")
staff = typer.Typer(no_args_is_help=True, help="SOC staff addresses.")
requests = typer.Typer(no_args_is_help=True, help="Service Requests.")
review = typer.Typer(no_args_is_help=True, help="Mail that opened nothing: the review queue.")
escalations = typer.Typer(no_args_is_help=True, help="Escalations and their steps (§3.5.5).")
domains = typer.Typer(no_args_is_help=True, help="What each sender domain's mail must prove.")
quarantine = typer.Typer(no_args_is_help=True, help="Mail that could not be processed, kept.")
deliveries = typer.Typer(no_args_is_help=True, help="Outgoing mail (the outbox).")
for group, name in (
    (customers, "customers"),
    (contacts, "contacts"),
    (products, "products"),
    (staff, "staff"),
    (requests, "requests"),
    (review, "review"),
    (escalations, "escalations"),
    (domains, "domains"),
    (quarantine, "quarantine"),
    (deliveries, "deliveries"),
):
    app.add_typer(group, name=name)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


@app.callback()
def _options(
    config: Annotated[Path | None, typer.Option(help="TOML file (default ./gateway.toml).")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    if config is not None:
        if not config.is_file():  # named on purpose: not there is an error (./gateway.toml may be)
            what = "is not a file" if config.exists() else "does not exist"
            raise _fail(f"configuration file {config} {what}")
        os.environ["GATEWAY_CONFIG"] = str(config)
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("mail.log", "pika", "mailparser", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main() -> None:
    app()


# --- running -----------------------------------------------------------------------------------


def _settings() -> Settings:
    try:
        return load()
    except ConfigError as exc:
        *first, last = exc.problems
        for problem in first:
            typer.echo(f"error: invalid configuration: {problem}", err=True)
        raise _fail(f"invalid configuration: {last}") from None


@contextmanager
def _runtime(settings: Settings | None = None, *, broker: bool = True) -> Iterator[Runtime]:
    """The runtime of one command; at its end SQLite's WAL is emptied and the engine disposed."""
    settings = _settings() if settings is None else settings
    try:
        rt = build(settings, outbox=None if broker else Outbox(make_broker("")))
    except (ValueError, OperationalError) as exc:
        raise _fail(f"cannot start: {exc}") from None
    try:
        yield rt
    finally:
        db.close(rt.sessions)


def _listenable(settings: Settings) -> Settings:
    """Settings whose SMTP address can be bound: checked before anything is loaded or said."""
    try:
        check_listen(settings.smtp_host, settings.smtp_port)
    except ListenError as exc:
        raise _fail(str(exc)) from None
    return settings


def _serve(services: Services) -> None:
    try:
        run_until_signal(services)
    except ListenError as exc:
        raise _fail(str(exc)) from None
    except OSError as exc:  # e.g. the Maildir of outbound mail cannot be made
        raise _fail(f"cannot start: {exc}") from None


@app.command()
def run(
    demo_data: Annotated[
        bool, typer.Option("--demo", help="Load the demo customer first.")
    ] = False,
) -> None:
    """Everything in one process: listener, poller (if configured), workers, sweep."""
    with _runtime(_listenable(_settings())) as rt:
        if demo_data:
            with rt.sessions.begin() as session:
                if demo.load(session, rt.now()):
                    logging.getLogger("gateway").info("demo customer %r loaded", demo.CUSTOMER)
        _banner(rt)
        _serve(Services(rt, smtp=True, imap=True, workers=True, sweep=True, clock=True))


@app.command()
def smtp() -> None:
    """The SMTP listener alone (with its own workers when no broker is configured)."""
    with _runtime(_listenable(_settings())) as rt:
        _serve(Services(rt, smtp=True, workers=in_process(rt.outbox.broker), sweep=True))


@app.command()
def imap() -> None:
    """The IMAP poller of GATEWAY_IMAP_URL alone (one per mailbox)."""
    settings = _settings()
    if not settings.imap_url:
        raise _fail("GATEWAY_IMAP_URL is not set")
    with _runtime(settings) as rt:
        _serve(Services(rt, imap=True, workers=in_process(rt.outbox.broker), sweep=True))


@app.command("clock")
def run_clock() -> None:
    """The clock alone: alerts, escalations, daily reviews (several may run on PostgreSQL)."""
    with _runtime() as rt:
        _serve(Services(rt, clock=True, workers=in_process(rt.outbox.broker), sweep=True))


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema (every command also does this on first use)."""
    with _runtime(broker=False):
        typer.echo("schema is up to date")


@app.command("config")
def show_config(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print the settings in effect (derived defaults filled in), passwords hidden."""
    shown = _settings().redacted()
    if as_json:
        typer.echo(json.dumps(shown, indent=2, ensure_ascii=False))
        return
    for name, value in shown.items():  # TOML's notation, as in gateway.toml
        typer.echo(f"{name} = {json.dumps(value, ensure_ascii=False)}")


@app.command("demo")
def load_demo() -> None:
    """Load the demo customer, its contacts and products (once)."""
    with _runtime(broker=False) as rt, rt.sessions.begin() as session:
        loaded = demo.load(session, rt.now())
    typer.echo("demo customer loaded" if loaded else "demo customer was there already")


def _banner(rt: Runtime) -> None:
    s = rt.settings
    typer.echo(
        f"SecureCall gateway: SMTP on {s.smtp_host}:{s.smtp_port} for "
        f"{', '.join(s.intake_addresses)}; outbound to {validators.without_password(s.outbound)}; "
        f"database {validators.without_password(s.database)}",
        err=True,
    )


# --- the directory -----------------------------------------------------------------------------


@contextmanager
def _session() -> Iterator[tuple[Session, Runtime]]:
    with _runtime(broker=False) as rt:
        try:
            with rt.sessions.begin() as session:
                yield session, rt
        except directory.DirectoryError as exc:
            raise _fail(str(exc)) from exc


@customers.command("add")
def customers_add(
    name: str,
    timezone: Annotated[str, typer.Option(help="Contracting office's zone.")] = "Europe/Berlin",
    country: Annotated[str, typer.Option(help="Country of its public holidays.")] = "DE",
    subdivision: Annotated[str | None, typer.Option(help="Region, e.g. BY.")] = None,
) -> None:
    """Add a customer."""
    timezone, country = (
        _checked(validators.time_zone, timezone),
        _checked(validators.country, country),
    )
    with _session() as (session, rt):
        directory.add_customer(
            session, name, rt.now(), timezone=timezone, country=country, subdivision=subdivision
        )
    typer.echo(f"customer {name!r} added")


@customers.command("list")
def customers_list(as_json: JsonFlag = False) -> None:
    """List customers."""
    with _session() as (session, _rt):
        rows = listings.customers(session)
    _print(rows, as_json, ("name", "timezone", "country", "contacts"))


@customers.command("remove")
def customers_remove(name: str) -> None:
    """Remove a customer that has no Service Requests."""
    with _session() as (session, _rt):
        directory.remove_customer(session, name)
    typer.echo(f"customer {name!r} removed")


@contacts.command("add")
def contacts_add(
    email: str,
    customer: Annotated[str, typer.Option(help="Customer name.")],
    name: Annotated[str, typer.Option()] = "",
    language: Annotated[Language, typer.Option(case_sensitive=False)] = Language.en,
    role: Annotated[
        ContactRole, typer.Option(case_sensitive=False)
    ] = ContactRole.technical_contact,
) -> None:
    """Add a contact (or update one of the same customer)."""
    with _session() as (session, rt):
        owner = directory.require_customer(session, customer)
        _, created = directory.add_contact(
            session, owner, email, name, rt.now(), language=language, role=role
        )
    typer.echo(f"contact {email} {'added' if created else 'updated'}")


@contacts.command("import")
def contacts_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    customer: Annotated[str, typer.Option(help="Customer name; created if new.")],
    as_json: JsonFlag = False,
) -> None:
    """Import contacts from a CSV file with columns email, name, language, role."""
    with _session() as (session, rt):
        report = directory.import_contacts(session, customer, file.read_text("utf-8-sig"), rt.now())
    result = {"created": report.created, "updated": report.updated, "errors": report.errors}
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    else:
        typer.echo(
            f"{report.created} created, {report.updated} updated, {len(report.errors)} rejected"
        )
        for error in report.errors:
            typer.echo(f"  {error}", err=True)
    if report.errors:
        raise typer.Exit(1)


@contacts.command("list")
def contacts_list(
    customer: Annotated[str | None, typer.Option(help="Only this customer's.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """List contacts."""
    with _session() as (session, _rt):
        owner = directory.require_customer(session, customer) if customer else None
        rows = [listings.contact(c) for c in directory.contacts(session, owner)]
    _print(rows, as_json, ("email", "name", "customer", "language", "role"))


@contacts.command("remove")
def contacts_remove(email: str) -> None:
    """Remove a contact (a leaver): it can no longer write; its SRs stay."""
    with _session() as (session, rt):
        directory.remove_contact(session, email, rt.now())
    typer.echo(f"contact {email} removed")


@products.command("add")
def products_add(
    customer: Annotated[str, typer.Option(help="Customer name.")],
    product: Annotated[str, typer.Option(help="Product name, e.g. 'FortiGate 600E'.")],
    valid_from: Annotated[str, typer.Option(help="YYYY-MM-DD.")],
    valid_to: Annotated[str, typer.Option(help="YYYY-MM-DD.")],
    serial: Annotated[str | None, typer.Option(help="Serial number or licence.")] = None,
    in_production: Annotated[bool, typer.Option("--in-production/--not-in-production")] = True,
    end_of_support: Annotated[str | None, typer.Option(help="Manufacturer's, YYYY-MM-DD.")] = None,
) -> None:
    """Add a product entitlement to a customer."""
    with _session() as (session, _rt):
        owner = directory.require_customer(session, customer)
        entitlement = directory.add_entitlement(
            session,
            owner,
            product,
            serial=serial,
            valid_from=_date(valid_from),
            valid_to=_date(valid_to),
            in_production=in_production,
            end_of_support=_date(end_of_support) if end_of_support else None,
        )
        number = entitlement.id
    typer.echo(f"entitlement {number} added")


@products.command("list")
def products_list(
    customer: Annotated[str | None, typer.Option(help="Only this customer's.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """List entitlements."""
    with _session() as (session, _rt):
        owner = directory.require_customer(session, customer) if customer else None
        rows = [listings.entitlement(e) for e in directory.entitlements(session, owner)]
    _print(rows, as_json, ("id", "customer", "product", "serial", "valid_to", "end_of_support"))


@products.command("remove")
def products_remove(entitlement_id: int) -> None:
    """Remove an entitlement by its id."""
    with _session() as (session, _rt):
        directory.remove_entitlement(session, entitlement_id)
    typer.echo(f"entitlement {entitlement_id} removed")


@staff.command("add")
def staff_add(
    email: str,
    name: Annotated[str, typer.Option()] = "",
    role: Annotated[StaffRole, typer.Option(case_sensitive=False)] = StaffRole.analyst,
) -> None:
    """Add (or update) a SOC staff address."""
    with _session() as (session, _rt):
        directory.add_staff(session, email, name, role)
    typer.echo(f"staff {email} added")


@staff.command("list")
def staff_list(as_json: JsonFlag = False) -> None:
    """List SOC staff."""
    with _session() as (session, _rt):
        rows = [listings.staff_member(s) for s in directory.staff(session)]
    _print(rows, as_json, ("email", "name", "role"))


@staff.command("remove")
def staff_remove(email: str) -> None:
    """Remove a SOC staff address."""
    with _session() as (session, _rt):
        directory.remove_staff(session, email)
    typer.echo(f"staff {email} removed")


@domains.command("set")
def domains_set(
    domain: str,
    policy: Annotated[Policy, typer.Option(case_sensitive=False)],
) -> None:
    """Set the authentication policy of a sender domain (R6.4)."""
    with _session() as (session, rt):
        directory.set_domain_policy(session, domain, policy, rt.now())
    typer.echo(f"{domain}: {policy}")


@domains.command("list")
def domains_list(as_json: JsonFlag = False) -> None:
    """Domains with a policy of their own (others use the defaults of the settings)."""
    with _session() as (session, _rt):
        rows = [
            {"domain": d.domain, "policy": d.policy, "updated_at": d.updated_at.isoformat()}
            for d in directory.domain_policies(session)
        ]
    _print(rows, as_json, ("domain", "policy", "updated_at"))


@domains.command("remove")
def domains_remove(domain: str) -> None:
    """Remove a domain's own policy: the defaults apply again."""
    with _session() as (session, _rt):
        directory.remove_domain_policy(session, domain)
    typer.echo(f"{domain}: default policy")


# --- reading -----------------------------------------------------------------------------------


@requests.command("list")
def requests_list(
    state: Annotated[State | None, typer.Option(case_sensitive=False)] = None,
    limit: int = 200,
    as_json: JsonFlag = False,
) -> None:
    """List Service Requests, newest first."""
    with _session() as (session, _rt):
        rows = listings.requests(session, state=state, limit=limit)
    _print(rows, as_json, ("id", "priority", "state", "customer", "requester", "title"))


@requests.command("show")
def requests_show(sr_id: str, as_json: JsonFlag = False) -> None:
    """Show one SR: its messages (full and stripped text, attachments) and deliveries."""
    with _session() as (session, _rt):
        shown = listings.request(session, sr_id)
    if shown is None:
        raise _fail(f"no Service Request {sr_id}")
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


@review.command("list")
def review_list(
    status: Annotated[ReviewStatus, typer.Option(case_sensitive=False)] = ReviewStatus.review,
    limit: int = 200,
    as_json: JsonFlag = False,
) -> None:
    """Mail that opened nothing: unregistered senders, automatic mail, strangers' replies."""
    with _session() as (session, _rt):
        rows = listings.held_mails(session, status=status, limit=limit)
    _print(rows, as_json, ("id", "received_at", "from", "subject", "reason"))


@review.command("show")
def review_show(stored_id: int, as_json: JsonFlag = False) -> None:
    """One held mail: envelope, reason, the sender's verdict, headers and text."""
    with _session() as (session, _rt):
        shown = listings.held_mail(session, stored_id)
    if shown is None:
        raise _fail(f"no stored mail {stored_id}")
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
    with _runtime() as rt:
        try:
            receipt = release_held(stored_id, rt)
        except NotHeld as exc:
            raise _fail(str(exc)) from None
        except TemporaryFailure as exc:
            raise _fail(f"{exc}; try again later") from None
        finally:
            rt.outbox.broker.close()
    _print_receipt(receipt, as_json)
    if receipt.held:
        raise typer.Exit(1)


@review.command("dismiss")
def review_dismiss(stored_id: int, as_json: JsonFlag = False) -> None:
    """Mark a held mail as looked at and let be: status `dismissed` (kept, not deleted)."""
    with _runtime(broker=False) as rt:
        try:
            dismiss_held(stored_id, rt)
        except NotHeld as exc:
            raise _fail(str(exc)) from None
    result = {"stored_id": stored_id, "status": "dismissed"}
    typer.echo(json.dumps(result, indent=2) if as_json else f"mail {stored_id} dismissed")


def _print_receipt(receipt: Receipt, as_json: bool) -> None:
    result = {
        "outcome": receipt.outcome,
        "stored_id": receipt.stored_id,
        "sr_id": receipt.sr_id,
        "reason": receipt.reason,
    }
    typer.echo(
        json.dumps(result, indent=2)
        if as_json
        else f"{receipt.outcome}: stored as {receipt.stored_id} {receipt.sr_id or receipt.reason}"
    )


@escalations.command("list")
def escalations_list(
    open_only: Annotated[bool, typer.Option("--open", help="Only those still open.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Every escalation with its steps, newest first."""
    with _session() as (session, _rt):
        rows = listings.escalations(session, open_only=open_only)
    _print(rows, as_json, ("sr_id", "level", "source", "requested_by", "opened_at", "closed_at"))


@quarantine.command("list")
def quarantine_list(limit: int = 200, as_json: JsonFlag = False) -> None:
    """Mail that could not be processed (R6.3): kept whole, with the reason."""
    review_list(status=ReviewStatus.quarantined, limit=limit, as_json=as_json)


@quarantine.command("show")
def quarantine_show(stored_id: int, as_json: JsonFlag = False) -> None:
    """One quarantined (or any stored) mail: envelope, reason, headers, parse defects."""
    with _session() as (session, _rt):
        shown = listings.stored_mail(session, stored_id)
    if shown is None:
        raise _fail(f"no stored mail {stored_id}")
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
    with _runtime() as rt:
        try:
            receipt = retry_quarantined(stored_id, rt)
        except NotQuarantined as exc:
            raise _fail(str(exc)) from None
        finally:
            rt.outbox.broker.close()
    _print_receipt(receipt, as_json)
    if receipt.outcome == "quarantined":
        raise typer.Exit(1)


@deliveries.command("list")
def deliveries_list(
    status: Annotated[DeliveryStatus | None, typer.Option(case_sensitive=False)] = None,
    limit: int = 200,
    as_json: JsonFlag = False,
) -> None:
    """Outgoing mail, newest first."""
    with _session() as (session, _rt):
        rows = listings.deliveries(session, status=status, limit=limit)
    _print(rows, as_json, ("id", "template", "to", "status", "attempts", "sent_at"))


# --- output ------------------------------------------------------------------------------------


def _print(rows: list[dict[str, Any]], as_json: bool, columns: Sequence[str]) -> None:
    if as_json:
        typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    if not rows:
        typer.echo("(none)")
        return
    # Long cells wrap within the terminal's width (a word too long for its column is folded);
    # Text, not markup: a subject such as "[bold]" is shown as it was written.
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in columns:
        table.add_column(Text(column.upper()), overflow="fold")
    for row in rows:
        table.add_row(*(Text("" if row.get(c) is None else str(row[c])) for c in columns))
    Console(highlight=False).print(table)


def _checked(check: Any, value: str) -> str:
    """`value` as `check` (gateway/validators.py) returns it, or the error at once."""
    try:
        return str(check(value))
    except ValueError as exc:
        raise _fail(str(exc)) from None


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _fail(f"not a date (YYYY-MM-DD): {value!r}") from None


def _fail(message: str) -> typer.Exit:
    """Print the error; the caller raises the returned Exit (exit status 2)."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)
