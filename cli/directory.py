"""`gateway customers | contacts | products | staff | domains`: the directory of who may write."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from cli.choices import (
    ContactRole,
    Language,
    Policy,
    StaffRole,
)
from cli.output import JsonFlag, checked, date_option, table
from cli.runtime import database
from gateway import directory
from gateway.core import validators
from gateway.directory import listings
from gateway.sus import changes
from gateway.sus.admin import admin_of
from gateway.sus.vocabulary import Change, How

customers = typer.Typer(no_args_is_help=True, help="Customers (the contracting parties).")
contacts = typer.Typer(no_args_is_help=True, help="Contacts: who may open and update SRs.")
products = typer.Typer(no_args_is_help=True, help="Products and entitlements of a customer.")
staff = typer.Typer(no_args_is_help=True, help="SOC staff addresses.")
domains = typer.Typer(no_args_is_help=True, help="What each sender domain's mail must prove.")
GROUPS = (
    (customers, "customers"),
    (contacts, "contacts"),
    (products, "products"),
    (staff, "staff"),
    (domains, "domains"),
)


@customers.command("add")
def customers_add(
    name: str,
    timezone: Annotated[str, typer.Option(help="Contracting office's zone.")] = "Europe/Berlin",
    country: Annotated[str, typer.Option(help="Country of its public holidays.")] = "DE",
    subdivision: Annotated[str | None, typer.Option(help="Region, e.g. BY.")] = None,
) -> None:
    """Add a customer."""
    timezone, country = (
        checked(validators.time_zone, timezone),
        checked(validators.country, country),
    )
    with database() as (session, rt):
        directory.add_customer(
            session, name, rt.now(), timezone=timezone, country=country, subdivision=subdivision
        )
    typer.echo(f"customer {name!r} added")


@customers.command("list")
def customers_list(as_json: JsonFlag = False) -> None:
    """List customers."""
    with database(writes=False) as (session, _rt):
        rows = listings.customers(session)
    table(rows, as_json, ("name", "timezone", "country", "contacts"))


@customers.command("remove")
def customers_remove(name: str) -> None:
    """Remove a customer that has no Service Requests and no subscriptions."""
    with database() as (session, _rt):
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
    with database() as (session, rt):
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
    with database() as (session, rt):
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
    with database(writes=False) as (session, _rt):
        owner = directory.require_customer(session, customer) if customer else None
        rows = [listings.contact(c) for c in directory.contacts(session, owner)]
    table(rows, as_json, ("email", "name", "customer", "language", "role", "bounced_at"))


@contacts.command("remove")
def contacts_remove(email: str) -> None:
    """Remove a contact (a leaver): it can no longer write, its subscriptions end; its SRs stay."""
    with database() as (session, rt):
        now = rt.now()
        contact = directory.remove_contact(session, email, now)
        session.flush()
        # R1.8, R4.2: ended at once, in the audit trail by the admin; back, it subscribes anew
        change = Change(admin_of(rt.settings), How.cli, now, detail="contact removed")
        ended = changes.end_all(session.connection(), contact.id, change)
    typer.echo(
        f"contact {email} removed" + (f", subscriptions ended: {len(ended)}" if ended else "")
    )


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
    with database() as (session, _rt):
        owner = directory.require_customer(session, customer)
        entitlement = directory.add_entitlement(
            session,
            owner,
            product,
            serial=serial,
            valid_from=date_option(valid_from),
            valid_to=date_option(valid_to),
            in_production=in_production,
            end_of_support=date_option(end_of_support) if end_of_support else None,
        )
        number = entitlement.id
    typer.echo(f"entitlement {number} added")


@products.command("list")
def products_list(
    customer: Annotated[str | None, typer.Option(help="Only this customer's.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """List entitlements."""
    with database(writes=False) as (session, _rt):
        owner = directory.require_customer(session, customer) if customer else None
        rows = [listings.entitlement(e) for e in directory.entitlements(session, owner)]
    table(rows, as_json, ("id", "customer", "product", "serial", "valid_to", "end_of_support"))


@products.command("remove")
def products_remove(entitlement_id: int) -> None:
    """Remove an entitlement by its id."""
    with database() as (session, _rt):
        directory.remove_entitlement(session, entitlement_id)
    typer.echo(f"entitlement {entitlement_id} removed")


@staff.command("add")
def staff_add(
    email: str,
    name: Annotated[str, typer.Option()] = "",
    role: Annotated[StaffRole, typer.Option(case_sensitive=False)] = StaffRole.analyst,
) -> None:
    """Add (or update) a SOC staff address."""
    with database() as (session, _rt):
        directory.add_staff(session, email, name, role)
    typer.echo(f"staff {email} added")


@staff.command("list")
def staff_list(as_json: JsonFlag = False) -> None:
    """List SOC staff."""
    with database(writes=False) as (session, _rt):
        rows = [listings.staff_member(s) for s in directory.staff(session)]
    table(rows, as_json, ("email", "name", "role"))


@staff.command("remove")
def staff_remove(email: str) -> None:
    """Remove a SOC staff address."""
    with database() as (session, _rt):
        directory.remove_staff(session, email)
    typer.echo(f"staff {email} removed")


@domains.command("set")
def domains_set(
    domain: str,
    policy: Annotated[Policy, typer.Option(case_sensitive=False)],
) -> None:
    """Set the authentication policy of a sender domain (R6.4)."""
    with database() as (session, rt):
        directory.set_domain_policy(session, domain, policy, rt.now())
    typer.echo(f"{domain}: {policy}")


@domains.command("list")
def domains_list(as_json: JsonFlag = False) -> None:
    """Domains with a policy of their own (others use the defaults of the settings)."""
    with database(writes=False) as (session, _rt):
        rows = [
            {"domain": d.domain, "policy": d.policy, "updated_at": d.updated_at.isoformat()}
            for d in directory.domain_policies(session)
        ]
    table(rows, as_json, ("domain", "policy", "updated_at"))


@domains.command("remove")
def domains_remove(domain: str) -> None:
    """Remove a domain's own policy: the defaults apply again."""
    with database() as (session, _rt):
        directory.remove_domain_policy(session, domain)
    typer.echo(f"{domain}: default policy")
