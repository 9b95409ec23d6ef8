"""The records several stages read alike: an SR with its customer's calendar and its requester.

The SOC side, the clock, escalations, the daily reviews (and the later services on an SR) all
act on an SR as one value; it is read here, at the floor they share.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, bindparam, select

from gateway.core.hours import Calendar
from gateway.core.vocabulary import State
from gateway.storage.tables import CONTACTS, CUSTOMERS, REQUESTS


@dataclass(frozen=True)
class RequestRow:
    """An SR with its customer's calendar and its requester, as the use-cases need it."""

    id: int
    public_id: str
    title: str
    type: str
    priority: int
    requested_priority: int | None
    state: State
    language: str
    customer_id: int
    customer: str
    calendar: Calendar
    requester: str | None
    requester_name: str
    assigned_to: str | None
    created_at: datetime
    initial_response_at: datetime | None
    last_soc_update_at: datetime | None


_REQUEST = (
    select(
        REQUESTS.c.id,
        REQUESTS.c.public_id,
        REQUESTS.c.title,
        REQUESTS.c.type,
        REQUESTS.c.priority,
        REQUESTS.c.requested_priority,
        REQUESTS.c.state,
        REQUESTS.c.language,
        REQUESTS.c.customer_id,
        CUSTOMERS.c.name.label("customer"),
        CUSTOMERS.c.timezone,
        CUSTOMERS.c.country,
        CUSTOMERS.c.subdivision,
        CONTACTS.c.email.label("requester"),
        CONTACTS.c.name.label("requester_name"),
        REQUESTS.c.assigned_to,
        REQUESTS.c.created_at,
        REQUESTS.c.initial_response_at,
        REQUESTS.c.last_soc_update_at,
    )
    .join(CUSTOMERS, CUSTOMERS.c.id == REQUESTS.c.customer_id)
    .outerjoin(CONTACTS, CONTACTS.c.id == REQUESTS.c.requester_id)
    .where(REQUESTS.c.id == bindparam("sr_id"))
)


def request_row(conn: Connection, sr_id: int) -> RequestRow:
    row = conn.execute(_REQUEST, {"sr_id": sr_id}).one()
    return RequestRow(
        row.id,
        row.public_id,
        row.title,
        row.type,
        row.priority,
        row.requested_priority,
        State(row.state),
        row.language,
        row.customer_id,
        row.customer,
        Calendar(row.timezone, row.country, row.subdivision),
        row.requester,
        row.requester_name or "",
        row.assigned_to,
        row.created_at,
        row.initial_response_at,
        row.last_soc_update_at,
    )
