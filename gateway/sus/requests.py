"""R4.2: a contact's request by mail ("please contact the SOC", §3.8), recorded and carried out:
unsubscribing at once, always; subscribing by GATEWAY_SUS_SUBSCRIBE_POLICY, `immediate` or
`admin` (pending until an admin approves, by `#approve` in answer to the notice or on the command
line). An unsubscribe by a bulletin's List-Unsubscribe mailto (RFC 2369) needs only its token.
The contact gets one confirmation of what was done (gateway/sus/notices.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from gateway.core.runtime import Runtime
from gateway.outbound.contexts.sus import ProductLine, SusRequest
from gateway.sus import changes, notices, queries
from gateway.sus.queries import ContactRow, NewRequest, SubscriptionRow
from gateway.sus.vocabulary import (
    ALL_KINDS,
    Change,
    How,
    RequestState,
    SubscriptionState,
)
from parsers.sus import SUBSCRIBE, UNSUBSCRIBE

Deliveries = list[tuple[int, str]]
LIVE = ("pending", "active", "suspended")  # what an unsubscribe stops
COVERED = ("covered", "end_of_support")  # §3.8: "for products supported under the Support Service"
NOT_COVERED = {
    "expired": "its entitlement has expired",
    "not_yet_valid": "its entitlement is not valid yet",
    "not_covered": "it is not on your SecureCall contract",
}


class RequestError(ValueError):
    """A request that cannot be decided (not pending, unknown); the message says why."""


@dataclass(frozen=True)
class Asking:
    """The mail that asks, as this room needs it."""

    stored: int  # the stored mail (raw_mails)
    address: str  # its From
    message_id: str | None
    references: tuple[str, ...]
    subject: str
    text: str  # its newest part
    now: datetime
    answerable: bool  # R6.1: a mail may go back to the sender (limits, a plain mailbox)


@dataclass(frozen=True)
class Wanted:
    """A product the request concerns, and the customer's entitlement to it today (R1.9)."""

    product_id: int
    product: str
    status: str  # covered | end_of_support | expired | not_yet_valid | not_covered


def ask(
    conn: Connection,
    rt: Runtime,
    asking: Asking,
    contact_id: int,
    action: str,
    wanted: list[Wanted],
    named: bool,
) -> Deliveries:
    """A contact's request; `named`: the mail named its products (else all it has)."""
    contact = queries.contact(conn, contact_id)
    if contact is None:
        raise RequestError(f"no contact {contact_id}")
    if action == UNSUBSCRIBE:
        return _unsubscribe(conn, rt, asking, contact, wanted, named)
    if action == SUBSCRIBE:
        return _subscribe(conn, rt, asking, contact, wanted, named)
    return [_confirm(conn, rt, asking, contact, "unclear")] if asking.answerable else []


def unsubscribe_by_token(
    conn: Connection, rt: Runtime, asking: Asking, subscription_id: int
) -> Deliveries:
    """RFC 2369, R4.3: at once, whoever sent it; confirmed to the subscriber, not the sender."""
    subscription = queries.subscription(conn, subscription_id)
    contact = queries.contact(conn, subscription.contact_id) if subscription else None
    if subscription is None or contact is None:
        return []
    change = Change(asking.address, How.mail, asking.now, asking.message_id, "List-Unsubscribe")
    if not changes.move(conn, subscription, SubscriptionState.unsubscribed, change):
        return []  # a second click of the same link: said once already
    _record(conn, asking, contact.id, UNSUBSCRIBE, [subscription.product_id], RequestState.done)
    if contact.removed:
        return []
    own = asking.address == contact.email  # threads in the subscriber's client when theirs
    names = queries.product_names(conn, [subscription.product_id])
    line = ProductLine(product=names.get(subscription.product_id, ""), detail="")
    written = notices.confirmation(
        conn,
        rt,
        contact,
        "unsubscribed",
        [line],
        now=asking.now,
        in_reply_to=asking.message_id if own else None,
        references=asking.references if own else (),
        raw_mail_id=asking.stored,
    )
    return [written]


def _unsubscribe(
    conn: Connection,
    rt: Runtime,
    asking: Asking,
    contact: ContactRow,
    wanted: list[Wanted],
    named: bool,
) -> Deliveries:
    """R4.3: at once, always: the products named, or none named, every subscription."""
    chosen = {w.product_id for w in wanted}
    live = queries.subscriptions_of(conn, contact.id, LIVE)
    subscriptions = [s for s in live if s.product_id in chosen] if named else live
    change = Change(asking.address, How.mail, asking.now, asking.message_id, "asked by mail")
    stopped = [s for s in subscriptions if changes.move(conn, s, _UNSUBSCRIBED, change)]
    stopped_ids = [s.product_id for s in stopped]
    _record(conn, asking, contact.id, UNSUBSCRIBE, stopped_ids, RequestState.done)
    if not asking.answerable:
        return []
    outcome = "unsubscribed" if stopped else "unchanged"
    return [_confirm(conn, rt, asking, contact, outcome, lines_of(conn, stopped))]


def _subscribe(
    conn: Connection,
    rt: Runtime,
    asking: Asking,
    contact: ContactRow,
    wanted: list[Wanted],
    named: bool,
) -> Deliveries:
    """R4.2: the covered products named (none named: all the customer's covered products),
    active at once or pending for an admin, by GATEWAY_SUS_SUBSCRIBE_POLICY."""
    immediate = rt.settings.sus_subscribe_policy == "immediate"
    state = SubscriptionState.active if immediate else SubscriptionState.pending
    change = Change(asking.address, How.mail, asking.now, asking.message_id, "asked by mail")
    refused = [
        ProductLine(product=w.product, detail=NOT_COVERED.get(w.status, w.status))
        for w in wanted
        if w.status not in COVERED
    ]
    results: list[tuple[SubscriptionRow, bool]] = []
    for w in wanted:
        if w.status in COVERED:
            results.append(changes.subscribe(conn, contact.id, w.product_id, _KINDS, change, state))
    waiting = [row for row, _ in results if row.state == SubscriptionState.pending]
    if waiting:
        return _wait_for_admin(conn, rt, asking, contact, waiting)
    asked_ids = [row.product_id for row, _ in results]
    _record(conn, asking, contact.id, SUBSCRIBE, asked_ids, RequestState.done)
    if not asking.answerable:
        return []
    outcome = "subscribed" if any(changed for _, changed in results) else "unchanged"
    if not results:
        outcome = "refused"
    rows = [row for row, _ in results]
    shown = refused if named else []
    return [_confirm(conn, rt, asking, contact, outcome, lines_of(conn, rows), shown)]


def _wait_for_admin(
    conn: Connection,
    rt: Runtime,
    asking: Asking,
    contact: ContactRow,
    waiting: list[SubscriptionRow],
) -> Deliveries:
    """Policy `admin`: recorded pending; the admins are told; the contact hears when decided."""
    request_id = _record(
        conn, asking, contact.id, SUBSCRIBE, [s.product_id for s in waiting], RequestState.pending
    )
    context = SusRequest(
        request_id=request_id,
        contact=contact.email,
        contact_name=contact.name,
        customer=contact.customer,
        products=lines_of(conn, waiting),
        mail_subject=asking.subject,
        excerpt=asking.text[:2000],
    )
    return notices.request_notices(conn, rt, request_id, context, asking.now, asking.stored)


def _record(
    conn: Connection,
    asking: Asking,
    contact_id: int,
    action: str,
    product_ids: list[int],
    state: RequestState,
) -> int:
    """R4.2: every request by mail is kept, with what became of it."""
    done = state != RequestState.pending
    return queries.add_request(
        conn,
        NewRequest(
            contact_id=contact_id,
            action=action,
            product_ids=product_ids,
            kinds=list(_KINDS),
            state=state,
            raw_mail_id=asking.stored,
            message_id=asking.message_id,
            created_at=asking.now,
            decided_at=asking.now if done else None,
            decided_by="policy" if done else None,
        ),
    )


def _confirm(
    conn: Connection,
    rt: Runtime,
    asking: Asking,
    contact: ContactRow,
    outcome: str,
    done: list[ProductLine] | None = None,
    refused: list[ProductLine] | None = None,
) -> tuple[int, str]:
    return notices.confirmation(
        conn,
        rt,
        contact,
        outcome,
        done or [],
        refused or [],
        now=asking.now,
        in_reply_to=asking.message_id,
        references=asking.references,
        raw_mail_id=asking.stored,
    )


def lines_of(conn: Connection, rows: list[SubscriptionRow]) -> list[ProductLine]:
    names = queries.product_names(conn, [row.product_id for row in rows])
    return [
        ProductLine(product=names.get(r.product_id, ""), detail=", ".join(r.kinds)) for r in rows
    ]


_KINDS: list[str] = [str(kind) for kind in ALL_KINDS]
_UNSUBSCRIBED = SubscriptionState.unsubscribed
