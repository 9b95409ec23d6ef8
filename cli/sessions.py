"""`gateway sessions | scans`: SecureHands sessions (§3.11.3–§3.11.7) and Security Assessment
Scan engagements (§3.13), the same use-cases as the SOC's mail commands."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any

import typer

from cli.output import JsonFlag, date_option, fail, table
from cli.runtime import runtime
from cli.securehands import Customer, amount, request_named, run, span
from gateway.requests import engagements
from gateway.securehands import acceptance, listings, scans, sessions
from gateway.securehands.acts import Act, Done
from gateway.securehands.queries import customer_named
from gateway.securehands.terms import LARGEST
from gateway.storage.db import transaction

sessions_app = typer.Typer(no_args_is_help=True, help="SecureHands sessions.")
scans_app = typer.Typer(no_args_is_help=True, help="Security Assessment Scan engagements.")
GROUPS = ((sessions_app, "sessions"), (scans_app, "scans"))

Start = Annotated[str, typer.Option(help="ISO date and time; customer's office time if bare.")]
End = Annotated[str, typer.Option(help="ISO date and time.")]
Session = Annotated[
    int | None, typer.Option("--session", min=1, max=LARGEST, help="Session number.")
]
# A session's number as the argument of a command (as shown by `gateway sessions list`)
SessionId = Annotated[int, typer.Argument(min=1, max=LARGEST)]


# --- sessions ------------------------------------------------------------------------------------


@sessions_app.command("request")
def sessions_request(sr_id: str) -> None:
    """The customer asked for a session: the 3-working-day scheduling target starts."""
    run(lambda act: engagements.request_session(act, request_named(act, sr_id)))


@sessions_app.command("schedule")
def sessions_schedule(sr_id: str, start: Start, end: End, session: Session = None) -> None:
    """Schedule a requested session (meets the scheduling target)."""

    def schedule(act: Act) -> Done:
        sr = request_named(act, sr_id)
        return engagements.schedule(act, sr, session, *span(sr, start, end))

    run(schedule)


@sessions_app.command("record")
def sessions_record(sr_id: str, start: Start, end: End, session: Session = None) -> None:
    """The session took place: its units are taken and the completion statement is sent."""

    def record(act: Act) -> Done:
        sr = request_named(act, sr_id)
        return sessions.deliver(act, sr, session, *span(sr, start, end))

    run(record)


@sessions_app.command("cancel")
def sessions_cancel(
    session_id: SessionId,
    beyond_control: Annotated[bool, typer.Option("--beyond-control")] = False,
) -> None:
    """Cancelled by the customer (late: forfeited), or beyond control (rearranged)."""

    def cancel(act: Act) -> Done:
        sr = engagements.request_of_session(act, session_id)
        return engagements.cancel(act, sr, session_id, beyond_control)

    run(cancel)


@sessions_app.command("no-show")
def sessions_no_show(session_id: SessionId) -> None:
    """The customer did not attend: the session's units are forfeited."""
    run(
        lambda act: sessions.no_show(
            act, engagements.request_of_session(act, session_id), session_id
        )
    )


@sessions_app.command("credit")
def sessions_credit(
    session_id: SessionId,
    count: Annotated[str, typer.Option("--units", help="Units to credit.")],
    reason: Annotated[str, typer.Option(help="Why, as the customer is told.")],
) -> None:
    """SOC management decides a query: all or part of the session's units credited."""
    credit = amount(count, "credit")
    run(lambda act: _decide(act, session_id, credit, reason))


@sessions_app.command("confirm")
def sessions_confirm(
    session_id: SessionId,
    reason: Annotated[str, typer.Option(help="As the customer is told.")] = "confirmed",
) -> None:
    """SOC management decides a query: the session's units stand."""
    run(lambda act: _decide(act, session_id, None, reason))


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
    ips: Annotated[
        int, typer.Option(min=1, max=LARGEST, help="IP addresses in scope.")
    ] = scans.MAX_IPS,
    max_ips: Annotated[
        int, typer.Option(min=1, max=LARGEST, help="More than 25 when agreed.")
    ] = scans.MAX_IPS,
) -> None:
    """A scan engagement ordered, its SOW signed: the scheduling target starts."""
    day = date_option(on) if on else None

    def order(act: Act) -> Done:
        sr = request_named(act, sr_id)
        ordered = day or act.now.astimezone(sr.calendar.zone).date()
        return engagements.order_scan(act, sr, ordered, ips, max_ips)

    run(order)


@scans_app.command("schedule")
def scans_schedule(sr_id: str, start: Start, end: End) -> None:
    """Schedule the scan (the first, or the remediation scan)."""
    run(lambda act: _scanspan(act, sr_id, start, end, engagements.schedule))


@scans_app.command("reschedule")
def scans_reschedule(sr_id: str, start: Start, end: End) -> None:
    """Move the scheduled scan (less than 2 business days before it: flagged to the SOC)."""

    def move(act: Act) -> Done:
        sr = request_named(act, sr_id)
        return scans.reschedule(act, sr, *span(sr, start, end))

    run(move)


def _scanspan(act: Act, sr_id: str, start: str, end: str, use: Callable[..., Done]) -> Done:
    sr = request_named(act, sr_id)
    return use(act, sr, None, *span(sr, start, end))


@scans_app.command("review")
def scans_review(
    sr_id: str,
    on: Annotated[str | None, typer.Option("--date", help="Review date (default today).")] = None,
) -> None:
    """The report reviewed with the customer: the remediation windows start."""
    day = date_option(on) if on else None

    def review(act: Act) -> Done:
        sr = request_named(act, sr_id)
        return scans.review(act, sr, day or act.now.astimezone(sr.calendar.zone).date())

    run(review)


@scans_app.command("remediation")
def scans_remediation(sr_id: str) -> None:
    """The customer asks for the remediation scan (after 30 days: flagged to the SOC)."""
    run(lambda act: scans.remediation(act, request_named(act, sr_id)))


@scans_app.command("list")
def scans_list(customer: Customer | None = None, as_json: JsonFlag = False) -> None:
    """Scan engagements."""
    rows = _listed(customer, listings.scan_engagements)
    table(rows, as_json, ("sr_id", "customer", "ordered_on", "ips", "scan", "scan_start"))


def _listed(
    customer: str | None, read: Callable[..., list[dict[str, Any]]]
) -> list[dict[str, Any]]:
    with runtime(broker=False, writes=False) as rt, transaction(rt.sessions, readonly=True) as conn:
        owner = customer_named(conn, customer) if customer else None
        if customer and owner is None:
            raise fail(f"no customer named {customer!r}")
        return read(conn, owner)
