"""The statements of bounce processing (R4.4): the Delivery a bounce is about, the bounces kept,
a contact's last one, bulletins refused at send time, suspended subscriptions a later mail
reached."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import Connection, bindparam, exists, insert, or_, select, update

from gateway.storage.tables import BOUNCES, BULLETIN_RECIPIENTS, CONTACTS, DELIVERIES, SUBSCRIPTIONS
from gateway.sus.queries import SubscriptionRow


@dataclass(frozen=True)
class DeliveryRef:
    """A Delivery a bounce is about: to whom, and the bulletin subscription it was for."""

    id: int
    recipient: str
    subscription_id: int | None  # None: not a bulletin (an acknowledgement, an answer …)


@dataclass(frozen=True)
class NewBounce:
    at: datetime
    contact_id: int
    subscription_id: int | None
    delivery_id: int | None
    raw_mail_id: int | None
    source: str  # verp | dsn | smtp | complaint
    permanent: bool
    counted: bool
    reason: str


@dataclass(frozen=True)
class Refused:
    """A bulletin's Delivery the workers marked failed, not looked at yet."""

    delivery_id: int
    subscription_id: int
    error: str


@dataclass(frozen=True)
class KeptBounce:
    at: datetime
    source: str
    reason: str


_REF = select(
    DELIVERIES.c.id, DELIVERIES.c.recipient, BULLETIN_RECIPIENTS.c.subscription_id
).outerjoin(BULLETIN_RECIPIENTS, BULLETIN_RECIPIENTS.c.delivery_id == DELIVERIES.c.id)
_SUBSCRIPTION_COLUMNS = [SUBSCRIPTIONS.c[name] for name in SubscriptionRow.__dataclass_fields__]


def delivery(conn: Connection, delivery_id: int) -> DeliveryRef | None:
    row = conn.execute(_REF.where(DELIVERIES.c.id == delivery_id)).first()
    return DeliveryRef(*row) if row is not None else None


def delivery_sent_as(conn: Connection, message_ids: list[str]) -> DeliveryRef | None:
    """The Delivery that went out with one of these Message-IDs (a returned mail's)."""
    if not message_ids:
        return None
    statement = _REF.where(DELIVERIES.c.message_id.in_(bindparam("ids", expanding=True)))
    row = conn.execute(statement.limit(1), {"ids": message_ids}).first()
    return DeliveryRef(*row) if row is not None else None


def add_bounce(conn: Connection, bounce: NewBounce) -> None:
    values = asdict(bounce) | {"reason": bounce.reason[:2000]}
    conn.execute(insert(BOUNCES), values)


def set_contact_bounced(conn: Connection, contact_id: int, at: datetime, reason: str) -> None:
    """R4.4: the contact's last permanent failure, so that the SOC sees a dead address."""
    conn.execute(
        update(CONTACTS)
        .where(CONTACTS.c.id == contact_id)
        .values(bounced_at=at, bounce_reason=reason[:2000])
    )


def last_counted(conn: Connection, contact_id: int, limit: int) -> list[KeptBounce]:
    """The last `limit` bounces that raised the address's score (those that make a score of
    `limit`: each added 1), oldest first."""
    rows = conn.execute(
        select(BOUNCES.c.at, BOUNCES.c.source, BOUNCES.c.reason)
        .where(BOUNCES.c.contact_id == contact_id, BOUNCES.c.counted)
        .order_by(BOUNCES.c.at.desc(), BOUNCES.c.id.desc())
        .limit(limit)
    )
    return [KeptBounce(*row) for row in reversed(rows.all())]


def refused_bulletins(conn: Connection, since: datetime, limit: int = 500) -> list[Refused]:
    """Bulletins the workers marked failed since `since` and no look has seen yet; locked on
    PostgreSQL (SKIP LOCKED), so that two clocks never count one twice."""
    seen = exists().where(BOUNCES.c.delivery_id == DELIVERIES.c.id, BOUNCES.c.source == "smtp")
    statement = (
        select(DELIVERIES.c.id, BULLETIN_RECIPIENTS.c.subscription_id, DELIVERIES.c.last_error)
        .join(BULLETIN_RECIPIENTS, BULLETIN_RECIPIENTS.c.delivery_id == DELIVERIES.c.id)
        .where(DELIVERIES.c.status == "failed", DELIVERIES.c.next_attempt_at >= since, ~seen)
        .order_by(DELIVERIES.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=DELIVERIES)
    )
    return [Refused(int(i), int(s), str(e or "")) for i, s, e in conn.execute(statement)]


def standing_since_suspended(
    conn: Connection, sent_before: datetime
) -> list[tuple[SubscriptionRow, int]]:
    """Suspended subscriptions whose address took a mail since (a Delivery sent after the
    suspension and before `sent_before`) and has not bounced since; with that Delivery."""
    statement = (
        select(*_SUBSCRIPTION_COLUMNS, DELIVERIES.c.id)
        .join(CONTACTS, CONTACTS.c.id == SUBSCRIPTIONS.c.contact_id)
        .join(DELIVERIES, DELIVERIES.c.recipient == CONTACTS.c.email)
        .where(
            SUBSCRIPTIONS.c.state == "suspended",
            DELIVERIES.c.status == "sent",
            DELIVERIES.c.sent_at > SUBSCRIPTIONS.c.updated_at,
            DELIVERIES.c.sent_at <= sent_before,
            or_(CONTACTS.c.bounced_at.is_(None), CONTACTS.c.bounced_at < DELIVERIES.c.sent_at),
        )
        .order_by(SUBSCRIPTIONS.c.id, DELIVERIES.c.id)
    )
    found: dict[int, tuple[SubscriptionRow, int]] = {}
    for row in conn.execute(statement):
        subscription = SubscriptionRow(*row[:-1])
        found.setdefault(subscription.id, (subscription, int(row[-1])))
    return list(found.values())
