"""The statements of the SRs: one opened, a message added with its files, an SR changed, and
the customer's contacts on it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from gateway.core.ids import new_sr_id
from gateway.core.values import columns
from gateway.core.vocabulary import State
from gateway.directory.queries import Person
from gateway.outbound.queries import add_thread_ref
from gateway.storage import blobs
from gateway.storage.tables import (
    ATTACHMENTS,
    CONTACTS,
    MESSAGES,
    REQUEST_EVENTS,
    REQUESTS,
    insert_ignore,
)
from parsers.mail import ParsedMail
from parsers.parts import Attachment


@dataclass(frozen=True)
class NewRequest:
    """An SR as it is opened (service_requests); its SR ID is drawn by `add_request`."""

    customer_id: int
    requester_id: int | None
    title: str
    type: str
    priority: int
    requested_priority: int | None
    requested_reason: str
    language: str
    state: State
    entitlement: dict[str, Any]
    follow_up_of_id: int | None
    created_at: datetime
    updated_at: datetime
    initial_response_at: datetime | None = None


_ADD_REQUEST = insert_ignore(REQUESTS)
_ADD_MESSAGE = insert(MESSAGES).returning(MESSAGES.c.id)
_ADD_ATTACHMENT = insert(ATTACHMENTS)
_ADD_LARGE_ATTACHMENT = insert(ATTACHMENTS).returning(ATTACHMENTS.c.id)
_ADD_EVENT = insert(REQUEST_EVENTS)


def add_request(conn: Connection, request: NewRequest) -> tuple[int, str]:
    """A new SR with a fresh SR ID (2^40 of them make a clash rare; one is retried anyway)."""
    statement = _ADD_REQUEST[conn.dialect.name].returning(REQUESTS.c.id)
    values = columns(request)
    for _ in range(10):
        public_id = new_sr_id()
        new = conn.execute(statement, {"public_id": public_id, **values}).scalar()
        if new is not None:
            return int(new), public_id
    raise IntegrityError("INSERT INTO service_requests", {}, Exception("no free SR ID"))


def add_message(
    conn: Connection,
    *,
    sr_id: int,
    stored: int,
    mail: ParsedMail,
    author_kind: str,
    reply_text: str,
    language: str | None,
    now: datetime,
    internal: bool = False,
) -> int:
    """The mail as a message on its SR, with its files byte for byte (R1.7); replies to it
    thread onto the SR."""
    message_id = int(
        conn.execute(
            _ADD_MESSAGE,
            {
                "sr_id": sr_id,
                "raw_mail_id": stored,
                "direction": "in",
                "author_kind": author_kind,
                "author_address": mail.from_addr,
                "author_name": mail.from_name[:200],
                "message_id": mail.message_id,
                "subject": mail.subject,
                "text": mail.text,
                "reply_text": reply_text,
                "html": mail.html,
                "language": language,
                "internal": internal,
                "created_at": now,
            },
        ).scalar_one()
    )
    files = [_file(message_id, stored, a) for a in mail.attachments]
    if not any(blobs.streamed(conn, f["data"]) for f in files):
        if files:
            conn.execute(_ADD_ATTACHMENT, files)
    else:  # one by one, in their order (ids are the order): the large ones in pieces
        for file in files:
            if blobs.streamed(conn, file["data"]):
                blobs.insert_large(conn, _ADD_LARGE_ATTACHMENT, ATTACHMENTS, "data", file)
            else:
                conn.execute(_ADD_ATTACHMENT, file)
    if mail.message_id:
        add_thread_ref(conn, mail.message_id, sr_id)
    return message_id


def _file(message: int, stored: int, attachment: Attachment) -> dict[str, Any]:
    """An attachment's row: a large one as its place in the stored mail `stored`, with no copy
    of its bytes (parsers/large.py); any other with its bytes."""
    place = attachment.in_place
    return {
        "message_id": message,
        "filename": attachment.filename,
        "content_type": attachment.content_type[:255],
        "size": attachment.size,
        "sha256": attachment.sha256,
        "raw_mail_id": stored if place else None,
        "raw_start": place.start if place else None,
        "raw_length": place.length if place else None,
        "transfer_encoding": place.encoding if place else None,
        "data": b"" if place else attachment.data,
    }


def set_request(
    conn: Connection,
    sr_id: int,
    *,
    updated_at: datetime | None = None,
    state: State | None = None,
    priority: int | None = None,
    assigned_to: str | None = None,
    closed_at: datetime | None = None,
    initial_response_at: datetime | None = None,
    last_soc_update_at: datetime | None = None,
    tam_notified_at: datetime | None = None,
    requested_priority: int | None = None,
    requested_reason: str | None = None,
) -> None:
    """Change an SR: each value given is set, the others are kept."""
    given = {
        "requested_priority": requested_priority,
        "requested_reason": requested_reason,
        "updated_at": updated_at,
        "state": state,
        "priority": priority,
        "assigned_to": assigned_to,
        "closed_at": closed_at,
        "initial_response_at": initial_response_at,
        "last_soc_update_at": last_soc_update_at,
        "tam_notified_at": tam_notified_at,
    }
    values = {name: value for name, value in given.items() if value is not None}
    conn.execute(update(REQUESTS).where(REQUESTS.c.id == sr_id).values(values))


@dataclass(frozen=True)
class StateChange:
    """An SR's state changed (request_events), or it was opened."""

    sr_id: int
    at: datetime
    to_state: State
    by: str


_LAST_STATE = (
    select(REQUEST_EVENTS.c.to_state)
    .where(REQUEST_EVENTS.c.sr_id == bindparam("sr_id"))
    .order_by(REQUEST_EVENTS.c.id.desc())
    .limit(1)
)


def record_state(conn: Connection, change: StateChange) -> None:
    """Append the change to the SR's history, which the reports read (time in each state,
    when it was resolved); a "change" to the state it already has is not one.

    Called after the SR's row was updated: its lock makes two changes of one SR at once follow
    each other, so each change leaves the state the one before it entered (its from_state is
    read here, not taken from what the caller read before the lock)."""
    previous = conn.scalar(_LAST_STATE, {"sr_id": change.sr_id})
    if previous == change.to_state:
        return
    conn.execute(_ADD_EVENT, {**columns(change), "from_state": previous})


def record_opening(conn: Connection, change: StateChange) -> None:
    """The first entry of a new SR's history: it came from no state (nothing to read first)."""
    conn.execute(_ADD_EVENT, {**columns(change), "from_state": None})


def customer_participants(conn: Connection, sr_id: int) -> list[Person]:
    """The customer's contacts on an SR: its requester and those who wrote on it."""
    rows = conn.execute(
        select(CONTACTS.c.email, CONTACTS.c.name)
        .join(REQUESTS, REQUESTS.c.customer_id == CONTACTS.c.customer_id)
        .where(REQUESTS.c.id == sr_id, CONTACTS.c.removed_at.is_(None))
        .where(
            or_(
                CONTACTS.c.id == REQUESTS.c.requester_id,
                CONTACTS.c.email.in_(
                    select(MESSAGES.c.author_address).where(
                        MESSAGES.c.sr_id == sr_id, MESSAGES.c.author_kind == "contact"
                    )
                ),
            )
        )
        .order_by(CONTACTS.c.email)
    )
    return [Person(row.email, row.name) for row in rows]
