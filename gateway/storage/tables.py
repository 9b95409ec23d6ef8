"""The tables as SQLAlchemy Core sees them: the mail path runs on Core statements, not the ORM.

One mail is a dozen statements, and the ORM's unit of work cost more than the statements
themselves. Each stage keeps the statements it needs in its own `queries` module.
"""

from __future__ import annotations

from typing import cast

from sqlalchemy import Insert, Table
from sqlalchemy.dialects import postgresql, sqlite

from gateway.storage.models import (
    AttachmentRow,
    Bounce,
    Bulletin,
    BulletinRecipient,
    Contact,
    Customer,
    Deadline,
    Delivery,
    DomainPolicy,
    Entitlement,
    Escalation,
    EscalationStep,
    Message,
    NoticeLimit,
    Product,
    RequestEvent,
    ScanEngagement,
    SecureHandsSession,
    SecureHandsSow,
    SenderRate,
    ServiceRequest,
    SigninAttempt,
    SocStaff,
    StoredMail,
    Subscription,
    SubscriptionChange,
    SubscriptionRequest,
    SubscriptionRequestRef,
    ThreadRef,
    UnitEntry,
    UnitLot,
)

STORED = cast(Table, StoredMail.__table__)
CONTACTS = cast(Table, Contact.__table__)
CUSTOMERS = cast(Table, Customer.__table__)
STAFF = cast(Table, SocStaff.__table__)
PRODUCTS = cast(Table, Product.__table__)
ENTITLEMENTS = cast(Table, Entitlement.__table__)
REQUESTS = cast(Table, ServiceRequest.__table__)
MESSAGES = cast(Table, Message.__table__)
ATTACHMENTS = cast(Table, AttachmentRow.__table__)
THREAD_REFS = cast(Table, ThreadRef.__table__)
DEADLINES = cast(Table, Deadline.__table__)
DELIVERIES = cast(Table, Delivery.__table__)
ESCALATIONS = cast(Table, Escalation.__table__)
ESCALATION_STEPS = cast(Table, EscalationStep.__table__)
DOMAIN_POLICIES = cast(Table, DomainPolicy.__table__)
UNIT_LOTS = cast(Table, UnitLot.__table__)
UNIT_LEDGER = cast(Table, UnitEntry.__table__)
SOWS = cast(Table, SecureHandsSow.__table__)
SESSIONS = cast(Table, SecureHandsSession.__table__)
SCANS = cast(Table, ScanEngagement.__table__)
SUBSCRIPTIONS = cast(Table, Subscription.__table__)
SUBSCRIPTION_CHANGES = cast(Table, SubscriptionChange.__table__)
SUBSCRIPTION_REQUESTS = cast(Table, SubscriptionRequest.__table__)
BULLETINS = cast(Table, Bulletin.__table__)
BULLETIN_RECIPIENTS = cast(Table, BulletinRecipient.__table__)
SUBSCRIPTION_REQUEST_REFS = cast(Table, SubscriptionRequestRef.__table__)
BOUNCES = cast(Table, Bounce.__table__)
SENDER_RATES = cast(Table, SenderRate.__table__)
NOTICE_LIMITS = cast(Table, NoticeLimit.__table__)
REQUEST_EVENTS = cast(Table, RequestEvent.__table__)
SIGNIN_ATTEMPTS = cast(Table, SigninAttempt.__table__)


def insert_ignore(table: Table) -> dict[str, Insert]:
    """INSERT … ON CONFLICT DO NOTHING for each dialect, built once."""
    return {
        "postgresql": postgresql.insert(table).on_conflict_do_nothing(),
        "sqlite": sqlite.insert(table).on_conflict_do_nothing(),
    }
