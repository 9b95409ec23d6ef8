"""R4.2: an admin decides a pending subscription request, on the command line (`gateway
subscriptions approve|deny`) or by mail, answering the request's notice with `#approve` or
`#deny reason`; the request's subscriptions become active or end unsubscribed, the contact is
told, and an admin's mail command is confirmed or refused with the reason."""

from __future__ import annotations

from sqlalchemy import Connection

from gateway.core.runtime import Runtime
from gateway.outbound.contexts.sus import SusCommand
from gateway.sus import changes, notices, queries
from gateway.sus.queries import ContactRow, SubscriptionRow
from gateway.sus.requests import Asking, Deliveries, RequestError, lines_of
from gateway.sus.vocabulary import (
    Change,
    How,
    RequestState,
    SubscriptionError,
    SubscriptionState,
)
from parsers.commands import Commands


def decide(
    conn: Connection,
    rt: Runtime,
    request_id: int,
    approve: bool,
    change: Change,
    reason: str = "",
) -> tuple[str, Deliveries]:
    """An admin approves (the pending subscriptions become active) or denies a request (they
    end unsubscribed); the contact is told. Returns what was done, and the mail."""
    request = queries.request(conn, request_id)
    if request is None:
        raise RequestError(f"no subscription request {request_id}")
    contact = queries.contact(conn, request.contact_id)
    if request.state != RequestState.pending or contact is None:
        raise RequestError(f"request {request_id} is {request.state}, not pending")
    if approve and contact.removed:
        raise RequestError(f"{contact.email} is no longer a contact")
    state = RequestState.approved if approve else RequestState.denied
    if not queries.decide_request(conn, request_id, state, change.by, change.now, reason):
        raise RequestError(f"request {request_id} was decided meanwhile")
    to = SubscriptionState.active if approve else SubscriptionState.unsubscribed
    detail = f"request {request_id} {state}" + (f": {reason}" if reason else "")
    moved = _move_pending(conn, contact, request.product_ids, to, _with(change, detail))
    if contact.removed:  # a leaver (§5.1.1) is told nothing more
        return f"{contact.email}: {detail}", []
    outcome = ("subscribed" if moved else "unchanged") if approve else "denied"
    written = notices.confirmation(
        conn,
        rt,
        contact,
        outcome,
        lines_of(conn, moved) if approve else [],
        now=change.now,
        reason=reason,
        in_reply_to=request.message_id,
    )
    return f"{contact.email}: {detail}", [written]


def answer(
    conn: Connection, rt: Runtime, asking: Asking, request_id: int, commands: Commands
) -> Deliveries:
    """An admin's mail in answer to a request's notice: its first command carried out (R4.2)."""
    first = commands.commands[0] if commands.commands else None
    change = Change(asking.address, How.mail, asking.now, asking.message_id)
    written: Deliveries = []
    if first is None:
        line = commands.unknown[0] if commands.unknown else ""
        done, detail = False, "no command: answer with #approve, or #deny <reason>"
    elif first.name == "deny" and not first.argument.strip():
        line, done, detail = first.line, False, "#deny needs a reason, which the contact is told"
    else:
        line = first.line
        try:
            detail, written = decide(
                conn, rt, request_id, first.name == "approve", change, first.argument.strip()
            )
            done = True
        except (RequestError, SubscriptionError) as exc:
            done, detail = False, str(exc)
    if asking.answerable:
        result = SusCommand(request_id=request_id, line=line, done=done, detail=detail)
        written.append(
            notices.command_result(
                conn, rt, asking.address, result, asking.now, asking.message_id, asking.stored
            )
        )
    return written


def _move_pending(
    conn: Connection,
    contact: ContactRow,
    product_ids: list[int],
    to: SubscriptionState,
    change: Change,
) -> list[SubscriptionRow]:
    """The request's subscriptions still pending, moved; one unsubscribed meanwhile (by the
    contact, or an admin) stays so."""
    moved = []
    for product_id in product_ids:
        row = queries.subscription_for(conn, contact.id, product_id)
        if row is not None and row.state == SubscriptionState.pending:
            changes.move(conn, row, to, change)
            moved.append(queries.subscription(conn, row.id) or row)
    return moved


def _with(change: Change, detail: str) -> Change:
    return Change(change.by, change.how, change.now, change.message_id, detail)
