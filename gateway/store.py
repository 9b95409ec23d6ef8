"""The SQL statements the use-cases need: small Core statements on a connection, no rules.

The mail path (intake and the workers) runs here on SQLAlchemy Core rather than the ORM: one
mail is a dozen statements, and the unit of work cost more than the statements themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Insert,
    Table,
    bindparam,
    case,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from gateway.hours import Calendar
from gateway.ids import new_sr_id
from gateway.models import (
    AttachmentRow,
    Contact,
    Customer,
    Deadline,
    Delivery,
    DomainPolicy,
    Escalation,
    EscalationStep,
    Message,
    ServiceRequest,
    SocStaff,
    StoredMail,
    ThreadRef,
)
from parsers.mail import ParsedMail

STORED: Table = StoredMail.__table__  # type: ignore[assignment]
CONTACTS: Table = Contact.__table__  # type: ignore[assignment]
CUSTOMERS: Table = Customer.__table__  # type: ignore[assignment]
STAFF: Table = SocStaff.__table__  # type: ignore[assignment]
REQUESTS: Table = ServiceRequest.__table__  # type: ignore[assignment]
MESSAGES: Table = Message.__table__  # type: ignore[assignment]
ATTACHMENTS: Table = AttachmentRow.__table__  # type: ignore[assignment]
THREAD_REFS: Table = ThreadRef.__table__  # type: ignore[assignment]
DEADLINES: Table = Deadline.__table__  # type: ignore[assignment]
DELIVERIES: Table = Delivery.__table__  # type: ignore[assignment]
ESCALATIONS: Table = Escalation.__table__  # type: ignore[assignment]
DOMAIN_POLICIES: Table = DomainPolicy.__table__  # type: ignore[assignment]
ESCALATION_STEPS: Table = EscalationStep.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class Sender:
    """Who the From address is in the directory."""

    kind: str  # contact | soc | unknown
    address: str
    name: str = ""
    customer_id: int | None = None
    contact_id: int | None = None
    language: str | None = None
    customer_name: str = ""
    calendar: Calendar | None = None  # the customer's Business Hours – Standard


@dataclass(frozen=True)
class Thread:
    """An SR a mail may answer."""

    sr_id: int
    public_id: str
    state: str
    customer_id: int


@dataclass(frozen=True)
class Claimed:
    """A Delivery a worker has claimed: everything needed to render, compose and send it."""

    id: int
    template: str
    audience: str
    language: str
    recipient: str
    context: dict[str, Any]
    message_id: str
    in_reply_to: str | None
    references: str
    auto_submitted: str
    attempts: int


def _insert_ignore(table: Table) -> dict[str, Insert]:
    """INSERT … ON CONFLICT DO NOTHING for each dialect, built once."""
    return {
        "postgresql": postgresql.insert(table).on_conflict_do_nothing(),
        "sqlite": sqlite.insert(table).on_conflict_do_nothing(),
    }


# Statements are built once and executed with parameters: building a statement per call cost
# more than running it.
_STORED_BY_KEY = select(STORED.c.id).where(STORED.c.dedup_key == bindparam("key"))
_ADD_STORED = insert(STORED).returning(STORED.c.id)
_CONTACT = (
    select(
        CONTACTS.c.id,
        CONTACTS.c.name,
        CONTACTS.c.language,
        CONTACTS.c.customer_id,
        CUSTOMERS.c.name.label("customer"),
        CUSTOMERS.c.timezone,
        CUSTOMERS.c.country,
        CUSTOMERS.c.subdivision,
    )
    .join(CUSTOMERS, CUSTOMERS.c.id == CONTACTS.c.customer_id)
    .where(CONTACTS.c.email == bindparam("address"), CONTACTS.c.removed_at.is_(None))
)
_STAFF = select(STAFF.c.name).where(STAFF.c.email == bindparam("address"))
_ADD_REQUEST = _insert_ignore(REQUESTS)
_ADD_MESSAGE = insert(MESSAGES).returning(MESSAGES.c.id)
_ADD_ATTACHMENT = insert(ATTACHMENTS)
_ADD_THREAD_REF = _insert_ignore(THREAD_REFS)
_ADD_DEADLINE = insert(DEADLINES)
_ADD_DELIVERY = insert(DELIVERIES).returning(DELIVERIES.c.id)
_NOTICES_SINCE = (
    select(func.count())
    .select_from(DELIVERIES)
    .where(
        DELIVERIES.c.recipient == bindparam("recipient"),
        DELIVERIES.c.template == bindparam("template"),
        DELIVERIES.c.created_at >= bindparam("since"),
    )
)


# --- mail in ----------------------------------------------------------------------------------


def stored_id(conn: Connection, dedup_key: str) -> int | None:
    return conn.scalar(_STORED_BY_KEY, {"key": dedup_key})


def stored_row(conn: Connection, stored_id: int) -> Any:
    return conn.execute(select(STORED).where(STORED.c.id == stored_id)).first()


def remove_stored(conn: Connection, stored_id: int) -> None:
    conn.execute(STORED.delete().where(STORED.c.id == stored_id))


def add_stored(conn: Connection, **values: Any) -> int:
    return int(conn.execute(_ADD_STORED, values).scalar_one())


def sender_of(conn: Connection, address: str) -> Sender:
    """The contact (with its customer's calendar), else the SOC staff member, else unknown."""
    if not address:
        return Sender("unknown", address)
    row = conn.execute(_CONTACT, {"address": address}).first()
    if row is not None:
        return Sender(
            "contact",
            address,
            row.name,
            row.customer_id,
            row.id,
            row.language,
            row.customer,
            Calendar(row.timezone, row.country, row.subdivision),
        )
    name = conn.scalar(_STAFF, {"address": address})
    return Sender("soc", address, name) if name is not None else Sender("unknown", address)


_THREAD_COLUMNS = (REQUESTS.c.id, REQUESTS.c.public_id, REQUESTS.c.state, REQUESTS.c.customer_id)


def requests_named(conn: Connection, public_ids: Sequence[str]) -> list[Thread]:
    if not public_ids:
        return []
    rows = conn.execute(select(*_THREAD_COLUMNS).where(REQUESTS.c.public_id.in_(public_ids)))
    order = {p: i for i, p in enumerate(public_ids)}
    return sorted((Thread(*row) for row in rows), key=lambda t: order[t.public_id])


def requests_answered(conn: Connection, message_ids: Sequence[str]) -> list[Thread]:
    """The SRs of the Message-IDs the gateway received or sent, in the order of `message_ids`."""
    if not message_ids:
        return []
    wanted = list(message_ids)[:100]
    rows = conn.execute(
        select(THREAD_REFS.c.message_id, *_THREAD_COLUMNS)
        .join(REQUESTS, REQUESTS.c.id == THREAD_REFS.c.sr_id)
        .where(THREAD_REFS.c.message_id.in_(wanted))
    ).all()
    order = {m: i for i, m in enumerate(wanted)}
    return [Thread(*row[1:]) for row in sorted(rows, key=lambda r: order[r.message_id])]


def notices_since(conn: Connection, recipient: str, template: str, since: datetime) -> int:
    params = {"recipient": recipient, "template": template, "since": since}
    return conn.scalar(_NOTICES_SINCE, params) or 0


def add_request(conn: Connection, **values: Any) -> tuple[int, str]:
    """A new SR with a fresh SR ID (2^40 of them make a clash rare; one is retried anyway)."""
    statement = _ADD_REQUEST[conn.dialect.name].returning(REQUESTS.c.id)
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
    stored: int | None,
    mail: ParsedMail,
    author_kind: str,
    reply_text: str,
    language: str | None,
    now: datetime,
    internal: bool = False,
) -> int:
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
    if mail.attachments:
        conn.execute(
            _ADD_ATTACHMENT,
            [
                {
                    "message_id": message_id,
                    "filename": a.filename,
                    "content_type": a.content_type[:255],
                    "size": a.size,
                    "sha256": a.sha256,
                    "data": a.data,
                }
                for a in mail.attachments
            ],
        )
    if mail.message_id:
        add_thread_ref(conn, mail.message_id, sr_id)
    return message_id


def add_thread_ref(conn: Connection, message_id: str, sr_id: int) -> None:
    conn.execute(_ADD_THREAD_REF[conn.dialect.name], {"message_id": message_id, "sr_id": sr_id})


def set_request(conn: Connection, sr_id: int, **values: Any) -> None:
    conn.execute(update(REQUESTS).where(REQUESTS.c.id == sr_id).values(**values))


def add_delivery(conn: Connection, **values: Any) -> int:
    return int(conn.execute(_ADD_DELIVERY, values).scalar_one())


# --- mail out ---------------------------------------------------------------------------------

_CLAIMED = (
    DELIVERIES.c.id,
    DELIVERIES.c.template,
    DELIVERIES.c.audience,
    DELIVERIES.c.language,
    DELIVERIES.c.recipient,
    DELIVERIES.c.context,
    DELIVERIES.c.message_id,
    DELIVERIES.c.in_reply_to,
    DELIVERIES.c.references,
    DELIVERIES.c.auto_submitted,
    DELIVERIES.c.attempts,
)


_CLAIM = (
    update(DELIVERIES)
    .where(DELIVERIES.c.id == bindparam("delivery_id"), DELIVERIES.c.status == "pending")
    .values(status="sending", claimed_at=bindparam("now"), attempts=DELIVERIES.c.attempts + 1)
    .returning(*_CLAIMED)
)
_FINISH = (
    update(DELIVERIES)
    .where(DELIVERIES.c.id == bindparam("delivery_id"), DELIVERIES.c.status == "sending")
    .values(status=bindparam("status"), sent_at=bindparam("sent_at"), last_error=bindparam("error"))
)


def claim_delivery(conn: Connection, delivery_id: int, now: datetime) -> Claimed | None:
    """pending -> sending, atomically; None if another worker has it or it is done."""
    row = conn.execute(_CLAIM, {"delivery_id": delivery_id, "now": now}).first()
    return Claimed(*row) if row is not None else None


def finish_delivery(
    conn: Connection, delivery_id: int, status: str, now: datetime, error: str = ""
) -> None:
    conn.execute(
        _FINISH,
        {
            "delivery_id": delivery_id,
            "status": status,
            "sent_at": now if status == "sent" else None,
            "error": error[:2000],
        },
    )


def retry_delivery(conn: Connection, delivery_id: int, at: datetime, error: str) -> None:
    conn.execute(
        update(DELIVERIES)
        .where(DELIVERIES.c.id == delivery_id, DELIVERIES.c.status == "sending")
        .values(status="pending", next_attempt_at=at, enqueued_at=at, last_error=error[:2000])
    )


def release_stale_sending(conn: Connection, before: datetime) -> int:
    """Deliveries a killed worker left in `sending` go back to `pending`, to be enqueued at once."""
    result = conn.execute(
        update(DELIVERIES)
        .where(DELIVERIES.c.status == "sending", DELIVERIES.c.claimed_at < before)
        .values(
            status="pending",
            enqueued_at=None,
            last_error="released: a worker lost it while sending",
        )
    )
    return int(result.rowcount or 0)


def take_due_deliveries(
    conn: Connection, now: datetime, requeue_after: timedelta, limit: int = 500
) -> list[tuple[int, str]]:
    """Pending Deliveries whose turn came and that no one enqueued lately; marks them enqueued."""
    rows = conn.execute(
        select(DELIVERIES.c.id, DELIVERIES.c.queue)
        .where(
            DELIVERIES.c.status == "pending",
            DELIVERIES.c.next_attempt_at <= now,
            or_(
                DELIVERIES.c.enqueued_at.is_(None), DELIVERIES.c.enqueued_at <= now - requeue_after
            ),
        )
        .order_by(DELIVERIES.c.next_attempt_at)
        .limit(limit)
    ).all()
    ids = [row.id for row in rows]
    if ids:
        conn.execute(update(DELIVERIES).where(DELIVERIES.c.id.in_(ids)).values(enqueued_at=now))
    return [(row.id, row.queue) for row in rows]


# --- Service Requests as the SOC side and the clock see them -----------------------------------


@dataclass(frozen=True)
class RequestRow:
    """An SR with its customer's calendar and its requester, as the use-cases need it."""

    id: int
    public_id: str
    title: str
    type: str
    priority: int
    requested_priority: int | None
    state: str
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
)
_REQUEST_BY_ID = _REQUEST.where(REQUESTS.c.id == bindparam("sr_id"))


def request_row(conn: Connection, sr_id: int) -> RequestRow:
    row = conn.execute(_REQUEST_BY_ID, {"sr_id": sr_id}).one()
    return RequestRow(
        row.id,
        row.public_id,
        row.title,
        row.type,
        row.priority,
        row.requested_priority,
        row.state,
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


@dataclass(frozen=True)
class File:
    """A stored attachment, to go out with a Delivery."""

    filename: str
    content_type: str
    data: bytes


def attachment_list(conn: Connection, message_id: int) -> list[tuple[int, str, str, int]]:
    """(id, filename, content type, size) of a stored message's attachments, in their order."""
    rows = conn.execute(
        select(
            ATTACHMENTS.c.id,
            ATTACHMENTS.c.filename,
            ATTACHMENTS.c.content_type,
            ATTACHMENTS.c.size,
        )
        .where(ATTACHMENTS.c.message_id == message_id)
        .order_by(ATTACHMENTS.c.id)
    )
    return [(int(i), str(name), str(kind), int(size)) for i, name, kind, size in rows]


def files(conn: Connection, ids: list[int]) -> list[File]:
    rows = conn.execute(
        select(ATTACHMENTS.c.filename, ATTACHMENTS.c.content_type, ATTACHMENTS.c.data)
        .where(ATTACHMENTS.c.id.in_(ids))
        .order_by(ATTACHMENTS.c.id)
    )
    return [File(name, kind, bytes(data)) for name, kind, data in rows]


def customer_participants(conn: Connection, sr_id: int) -> list[tuple[str, str]]:
    """(address, name) of the customer's contacts on an SR: its requester and those who wrote."""
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
    return [(row.email, row.name) for row in rows]


def thread_of(conn: Connection, sr_id: int) -> tuple[str | None, list[str]]:
    """For a mail to the customer: the newest customer Message-ID, and the thread's IDs in order.

    The thread is every mail the customer sent on the SR and every mail sent to the customer.
    """
    inbound = conn.execute(
        select(MESSAGES.c.message_id, MESSAGES.c.created_at).where(
            MESSAGES.c.sr_id == sr_id,
            MESSAGES.c.author_kind == "contact",
            MESSAGES.c.message_id.is_not(None),
        )
    ).all()
    outbound = conn.execute(
        select(DELIVERIES.c.message_id, DELIVERIES.c.created_at).where(
            DELIVERIES.c.sr_id == sr_id, DELIVERIES.c.audience == "customer"
        )
    ).all()
    ordered = sorted([*inbound, *outbound], key=lambda r: r.created_at)
    latest = max(inbound, key=lambda r: r.created_at).message_id if inbound else None
    return latest, [r.message_id for r in ordered]


def contacts_with_role(conn: Connection, customer_id: int, role: str) -> list[tuple[str, str]]:
    rows = conn.execute(
        select(CONTACTS.c.email, CONTACTS.c.name)
        .where(
            CONTACTS.c.customer_id == customer_id,
            CONTACTS.c.role == role,
            CONTACTS.c.removed_at.is_(None),
        )
        .order_by(CONTACTS.c.email)
    )
    return [(row.email, row.name) for row in rows]


def staff_with_role(conn: Connection, role: str) -> list[tuple[str, str]]:
    rows = conn.execute(
        select(STAFF.c.email, STAFF.c.name).where(STAFF.c.role == role).order_by(STAFF.c.email)
    )
    return [(row.email, row.name) for row in rows]


def is_staff(conn: Connection, address: str) -> bool:
    return conn.scalar(_STAFF, {"address": address}) is not None


# --- Deadlines --------------------------------------------------------------------------------

_ADD_JOB = _insert_ignore(DEADLINES)


def add_deadline_row(conn: Connection, **values: Any) -> int:
    return int(conn.execute(_ADD_DEADLINE.returning(DEADLINES.c.id), values).scalar_one())


def open_deadlines(conn: Connection, sr_id: int, kinds: Sequence[str]) -> list[Any]:
    """Deadlines of an SR still running (not met), of the given kinds."""
    return list(
        conn.execute(
            select(DEADLINES).where(
                DEADLINES.c.sr_id == sr_id,
                DEADLINES.c.kind.in_(list(kinds)),
                DEADLINES.c.met_at.is_(None),
            )
        )
    )


def set_deadline(conn: Connection, deadline_id: int, **values: Any) -> None:
    conn.execute(update(DEADLINES).where(DEADLINES.c.id == deadline_id).values(**values))


def due_deadlines(conn: Connection, now: datetime, limit: int) -> list[Any]:
    """Deadlines the clock must act on now, locked for this transaction (other clocks skip them)."""
    return list(
        conn.execute(
            select(DEADLINES)
            .where(DEADLINES.c.next_at <= now)
            .order_by(DEADLINES.c.next_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )


def ensure_job(conn: Connection, kind: str, due: datetime, now: datetime) -> None:
    """A daily job's single row (a unique index keeps it single when two clocks start together)."""
    conn.execute(
        _ADD_JOB[conn.dialect.name],
        {
            "sr_id": None,
            "escalation_id": None,
            "kind": kind,
            "started_at": now,
            "due_at": due,
            "next_at": due,
            "created_at": now,
        },
    )


# --- sender authentication policies (R6.4) ------------------------------------------------------

_DOMAIN_POLICY = select(DOMAIN_POLICIES.c.policy).where(
    DOMAIN_POLICIES.c.domain == bindparam("domain")
)


def policy_for(conn: Connection, address: str, contacts: str, staff: str) -> str:
    """The sender domain's own policy, else `staff` for SOC staff and `contacts` for others."""
    domain = address.rpartition("@")[2].lower()
    explicit = conn.scalar(_DOMAIN_POLICY, {"domain": domain}) if domain else None
    if explicit:
        return str(explicit)
    return staff if address and is_staff(conn, address) else contacts


# --- limits on automatic replies (R6.1) --------------------------------------------------------

_AUTOREPLIES_TO = select(
    func.count(),
    func.coalesce(func.sum(case((DELIVERIES.c.created_at >= bindparam("hour"), 1), else_=0)), 0),
).where(
    DELIVERIES.c.recipient == bindparam("recipient"),
    DELIVERIES.c.auto_submitted == "auto-replied",
    DELIVERIES.c.created_at >= bindparam("day"),
)
_AUTOREPLIES_ABOUT = (
    select(func.count())
    .select_from(DELIVERIES)
    .where(
        DELIVERIES.c.sr_id == bindparam("sr_id"),
        DELIVERIES.c.auto_submitted == "auto-replied",
        DELIVERIES.c.created_at >= bindparam("since"),
    )
)


def autoreplies_to(
    conn: Connection, recipient: str, hour: datetime, day: datetime
) -> tuple[int, int]:
    """Automatic replies to `recipient` since `hour` and since `day`."""
    day_count, hour_count = conn.execute(
        _AUTOREPLIES_TO, {"recipient": recipient, "hour": hour, "day": day}
    ).one()
    return int(hour_count), int(day_count)


def autoreplies_about(conn: Connection, sr_id: int, since: datetime) -> int:
    return conn.scalar(_AUTOREPLIES_ABOUT, {"sr_id": sr_id, "since": since}) or 0
