"""`gateway units | sow | sessions | scans`: SecureHands units, SOWs, sessions and scan
engagements (§3.11–§3.13), the same use-cases as the SOC's mail commands.

Mails these commands write (a statement, a forfeit notice …) are sent by the running gateway.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

import typer

from cli.output import JsonFlag, date_option, fail, table
from cli.runtime import runtime
from gateway.requests import engagements
from gateway.securehands import acceptance, listings, scans, sessions, sows, terms
from gateway.securehands.acts import Act, Done, Refused
from gateway.securehands.queries import CustomerRow, customer_named, request_id
from gateway.storage.db import transaction
from gateway.storage.records import RequestRow, request_row

units = typer.Typer(no_args_is_help=True, help="SecureHands units: lots, balance, ledger.")
sow = typer.Typer(no_args_is_help=True, help="SecureHands Statements of Work.")
sessions_app = typer.Typer(no_args_is_help=True, help="SecureHands sessions.")
scans_app = typer.Typer(no_args_is_help=True, help="Security Assessment Scan engagements.")
GROUPS = ((units, "units"), (sow, "sow"), (sessions_app, "sessions"), (scans_app, "scans"))

Customer = Annotated[str, typer.Option("--customer", help="Customer name.")]
Start = Annotated[str, typer.Option(help="ISO date and time; customer's office time if bare.")]
End = Annotated[str, typer.Option(help="ISO date and time.")]
Session = Annotated[int | None, typer.Option("--session", help="Session number.")]


def _do(work: Callable[[Act], Done]) -> None:
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


def _owner(act: Act, name: str) -> CustomerRow:
    found = customer_named(act.conn, name)
    if found is None:
        raise Refused(f"no customer named {name!r}")
    return found


def _sr(act: Act, public_id: str) -> RequestRow:
    found = request_id(act.conn, public_id)
    if found is None:
        raise Refused(f"no Service Request {public_id}")
    return request_row(act.conn, found)


def _span(sr: RequestRow, start: str, end: str) -> tuple[datetime, datetime]:
    return terms.span(f"{start}/{end}", sr.calendar.zone)


def _amount(value: str, what: str) -> Decimal:
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
    amount, day = _amount(count, "units"), date_option(on) if on else None

    def buy(act: Act) -> Done:
        owner = _owner(act, customer)
        return sows.buy(act, owner, amount, day or owner.today(act.now), reference)

    _do(buy)


@units.command("balance")
def units_balance(customer: Customer, as_json: JsonFlag = False) -> None:
    """The customer's units: per lot, reserved, pending, available."""
    with runtime(broker=False) as rt, transaction(rt.sessions, readonly=True) as conn:
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
    with runtime(broker=False) as rt, transaction(rt.sessions, readonly=True) as conn:
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
        _amount(count, "units"),
        _amount(fixed, "fixed units") if fixed else None,
        _amount(rate, "rate"),
    )
    _do(lambda act: engagements.agree_sow(act, _sr(act, sr_id), agreed))


@sow.command("finish")
def sow_finish(sr_id: str) -> None:
    """The SOW is done or withdrawn: what its reservation still holds is released."""
    _do(lambda act: sows.finish(act, _sr(act, sr_id)))


# --- sessions ------------------------------------------------------------------------------------


@sessions_app.command("request")
def sessions_request(sr_id: str) -> None:
    """The customer asked for a session: the 3-working-day scheduling target starts."""
    _do(lambda act: engagements.request_session(act, _sr(act, sr_id)))


@sessions_app.command("schedule")
def sessions_schedule(sr_id: str, start: Start, end: End, session: Session = None) -> None:
    """Schedule a requested session (meets the scheduling target)."""

    def schedule(act: Act) -> Done:
        sr = _sr(act, sr_id)
        return engagements.schedule(act, sr, session, *_span(sr, start, end))

    _do(schedule)


@sessions_app.command("record")
def sessions_record(sr_id: str, start: Start, end: End, session: Session = None) -> None:
    """The session took place: its units are taken and the completion statement is sent."""

    def record(act: Act) -> Done:
        sr = _sr(act, sr_id)
        return sessions.deliver(act, sr, session, *_span(sr, start, end))

    _do(record)


@sessions_app.command("cancel")
def sessions_cancel(
    session_id: int,
    beyond_control: Annotated[bool, typer.Option("--beyond-control")] = False,
) -> None:
    """Cancelled by the customer (late: forfeited), or beyond control (rearranged)."""

    def cancel(act: Act) -> Done:
        sr = engagements.request_of_session(act, session_id)
        return engagements.cancel(act, sr, session_id, beyond_control)

    _do(cancel)


@sessions_app.command("no-show")
def sessions_no_show(session_id: int) -> None:
    """The customer did not attend: the session's units are forfeited."""
    _do(
        lambda act: sessions.no_show(
            act, engagements.request_of_session(act, session_id), session_id
        )
    )


@sessions_app.command("credit")
def sessions_credit(
    session_id: int,
    count: Annotated[str, typer.Option("--units", help="Units to credit.")],
    reason: Annotated[str, typer.Option(help="Why, as the customer is told.")],
) -> None:
    """SOC management decides a query: all or part of the session's units credited."""
    amount = _amount(count, "credit")
    _do(lambda act: _decide(act, session_id, amount, reason))


@sessions_app.command("confirm")
def sessions_confirm(
    session_id: int,
    reason: Annotated[str, typer.Option(help="As the customer is told.")] = "confirmed",
) -> None:
    """SOC management decides a query: the session's units stand."""
    _do(lambda act: _decide(act, session_id, None, reason))


def _decide(act: Act, session_id: int, credit: Decimal | None, reason: str) -> Done:
    sr = engagements.request_of_session(act, session_id)
    row = sessions.pick(act, sr, session_id, (acceptance.QUERIED,))
    return acceptance.decide(act, sr, row, credit, reason)


@sessions_app.command("list")
def sessions_list(customer: Customer | None = None, as_json: JsonFlag = False) -> None:
    """SecureHands sessions, oldest first."""
    rows = _listed(customer, listings.sessions)
    table(rows, as_json, ("id", "sr_id", "customer", "state", "planned_start", "units"))


# --- scans ---------------------------------------------------------------------------------------


@scans_app.command("order")
def scans_order(
    sr_id: str,
    on: Annotated[str | None, typer.Option("--date", help="Order date (default today).")] = None,
    ips: Annotated[int, typer.Option(help="IP addresses in scope.")] = scans.MAX_IPS,
    max_ips: Annotated[int, typer.Option(help="More than 25 when agreed.")] = scans.MAX_IPS,
) -> None:
    """A scan engagement ordered, its SOW signed: the scheduling target starts."""
    day = date_option(on) if on else None

    def order(act: Act) -> Done:
        sr = _sr(act, sr_id)
        ordered = day or act.now.astimezone(sr.calendar.zone).date()
        return engagements.order_scan(act, sr, ordered, ips, max_ips)

    _do(order)


@scans_app.command("schedule")
def scans_schedule(sr_id: str, start: Start, end: End) -> None:
    """Schedule the scan (the first, or the remediation scan)."""
    _do(lambda act: _scan_span(act, sr_id, start, end, engagements.schedule))


@scans_app.command("reschedule")
def scans_reschedule(sr_id: str, start: Start, end: End) -> None:
    """Move the scheduled scan (less than 2 business days before it: flagged to the SOC)."""

    def move(act: Act) -> Done:
        sr = _sr(act, sr_id)
        return scans.reschedule(act, sr, *_span(sr, start, end))

    _do(move)


def _scan_span(act: Act, sr_id: str, start: str, end: str, use: Callable[..., Done]) -> Done:
    sr = _sr(act, sr_id)
    return use(act, sr, None, *_span(sr, start, end))


@scans_app.command("review")
def scans_review(
    sr_id: str,
    on: Annotated[str | None, typer.Option("--date", help="Review date (default today).")] = None,
) -> None:
    """The report reviewed with the customer: the remediation windows start."""
    day = date_option(on) if on else None

    def review(act: Act) -> Done:
        sr = _sr(act, sr_id)
        return scans.review(act, sr, day or act.now.astimezone(sr.calendar.zone).date())

    _do(review)


@scans_app.command("remediation")
def scans_remediation(sr_id: str) -> None:
    """The customer asks for the remediation scan (after 30 days: flagged to the SOC)."""
    _do(lambda act: scans.remediation(act, _sr(act, sr_id)))


@scans_app.command("list")
def scans_list(customer: Customer | None = None, as_json: JsonFlag = False) -> None:
    """Scan engagements."""
    rows = _listed(customer, listings.scan_engagements)
    table(rows, as_json, ("sr_id", "customer", "ordered_on", "ips", "scan", "scan_start"))


def _listed(
    customer: str | None, read: Callable[..., list[dict[str, Any]]]
) -> list[dict[str, Any]]:
    with runtime(broker=False) as rt, transaction(rt.sessions, readonly=True) as conn:
        owner = customer_named(conn, customer) if customer else None
        if customer and owner is None:
            raise fail(f"no customer named {customer!r}")
        return read(conn, owner)
