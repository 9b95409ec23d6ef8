"""`gateway units | sow`: SecureHands units and Statements of Work (§3.11.2), the same
use-cases as the SOC's mail commands; how every SecureHands command runs (`run`). Sessions and
scans are cli/sessions.py.

Mails these commands write (a statement, a forfeit notice …) are sent by the running gateway.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Annotated

import typer

from cli.output import JsonFlag, date_option, fail, table
from cli.runtime import runtime
from gateway.requests import engagements
from gateway.securehands import listings, sows, terms
from gateway.securehands.acts import Act, Done, Refused
from gateway.securehands.queries import CustomerRow, customer_named, request_id
from gateway.storage.db import transaction
from gateway.storage.records import RequestRow, request_row

units = typer.Typer(no_args_is_help=True, help="SecureHands units: lots, balance, ledger.")
sow = typer.Typer(no_args_is_help=True, help="SecureHands Statements of Work.")
GROUPS = ((units, "units"), (sow, "sow"))

Customer = Annotated[str, typer.Option("--customer", help="Customer name.")]


def run(work: Callable[[Act], Done]) -> None:
    """One use-case in one transaction; its mails enqueued after the commit; a refusal is an
    error line (exit status 2) and changes nothing."""
    with runtime() as rt:
        try:
            with transaction(rt.sessions) as conn:
                done = work(Act(conn, rt, "cli", rt.now()))
            rt.outbox.enqueue(done.deliveries)
        except Refused as exc:
            raise fail(str(exc)) from None
        finally:
            rt.outbox.broker.close()
    typer.echo(done.detail)


def owner_named(act: Act, name: str) -> CustomerRow:
    found = customer_named(act.conn, name)
    if found is None:
        raise Refused(f"no customer named {name!r}")
    return found


def request_named(act: Act, public_id: str) -> RequestRow:
    found = request_id(act.conn, public_id)
    if found is None:
        raise Refused(f"no Service Request {public_id}")
    return request_row(act.conn, found)


def span(sr: RequestRow, start: str, end: str) -> tuple[datetime, datetime]:
    return terms.span(f"{start}/{end}", sr.calendar.zone)


def amount(value: str, what: str) -> Decimal:
    try:
        return terms.amount(value, what)
    except Refused as exc:
        raise fail(str(exc)) from None


# --- units ---------------------------------------------------------------------------------------


@units.command("purchase")
def units_purchase(
    customer: Customer,
    count: Annotated[str, typer.Option("--units", help="Units bought.")],
    on: Annotated[str | None, typer.Option("--date", help="Purchase date (default today).")] = None,
    reference: Annotated[str, typer.Option(help="Purchase order or invoice.")] = "",
) -> None:
    """Record units bought (§3.11.2: valid 12 months from the purchase date)."""
    bought, day = amount(count, "units"), date_option(on) if on else None

    def buy(act: Act) -> Done:
        owner = owner_named(act, customer)
        return sows.buy(act, owner, bought, day or owner.today(act.now), reference)

    run(buy)


@units.command("balance")
def units_balance(customer: Customer, as_json: JsonFlag = False) -> None:
    """The customer's units: per lot, reserved, pending, available."""
    with runtime(broker=False, writes=False) as rt, transaction(rt.sessions, readonly=True) as conn:
        owner = customer_named(conn, customer)
        if owner is None:
            raise fail(f"no customer named {customer!r}")
        shown = listings.balance(conn, owner, rt.now())
    if as_json:
        typer.echo(json.dumps(shown, indent=2, ensure_ascii=False))
        return
    table(shown["lots"], False, ("reference", "purchased_on", "expires_on", "units", "left"))
    for name in ("reserved", "pending", "debited", "forfeited", "expired", "credited"):
        typer.echo(f"{name:10} {shown[name]}")
    typer.echo(f"{'available':10} {shown['available']}")


@units.command("ledger")
def units_ledger(customer: Customer, as_json: JsonFlag = False) -> None:
    """Every line of the customer's ledger, oldest first."""
    with runtime(broker=False, writes=False) as rt, transaction(rt.sessions, readonly=True) as conn:
        owner = customer_named(conn, customer)
        if owner is None:
            raise fail(f"no customer named {customer!r}")
        rows = listings.ledger(conn, owner)
    table(rows, as_json, ("id", "at", "kind", "units", "from_reserve", "lot", "session_id", "note"))


# --- SOWs ----------------------------------------------------------------------------------------


@sow.command("agree")
def sow_agree(
    sr_id: str,
    count: Annotated[str, typer.Option("--units", help="Units the SOW plans.")],
    fixed: Annotated[str | None, typer.Option("--fixed-per-session")] = None,
    rate: Annotated[str, typer.Option("--out-of-hours-rate")] = "1",
) -> None:
    """A SOW agreed: its planned units are reserved (a shortfall sends a top-up notice)."""
    agreed = terms.SowTerms(
        amount(count, "units"),
        amount(fixed, "fixed units") if fixed else None,
        amount(rate, "rate"),
    )
    run(lambda act: engagements.agree_sow(act, request_named(act, sr_id), agreed))


@sow.command("finish")
def sow_finish(sr_id: str) -> None:
    """The SOW is done or withdrawn: what its reservation still holds is released."""
    run(lambda act: sows.finish(act, request_named(act, sr_id)))
