"""The stored records, in the service description's words (§1.3): customers, contacts, SRs, mail."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    false,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

Id = BigInteger().with_variant(Integer, "sqlite")  # SQLite autoincrements INTEGER PRIMARY KEY only


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, also on SQLite which stores no zone."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
    }


# --- the directory: who may write (§5.1.1) -----------------------------------------------------


class Customer(Base):
    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    timezone: Mapped[str] = mapped_column(String(64))  # the contracting office's zone (§1.3)
    country: Mapped[str] = mapped_column(String(2))  # public holidays of Business Hours – Standard
    subdivision: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime]
    contacts: Mapped[list[Contact]] = relationship(back_populates="customer")


class Contact(Base):
    __tablename__ = "contacts"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)  # stored lower-case
    name: Mapped[str] = mapped_column(String(200))
    language: Mapped[str] = mapped_column(String(2))
    role: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime]
    removed_at: Mapped[datetime | None]  # a leaver (§5.1.1): may no longer write; history stays
    customer: Mapped[Customer] = relationship(back_populates="contacts")


class Product(Base):
    __tablename__ = "products"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)


class Entitlement(Base):
    """A product on a customer's Support Certificate (§3.1, §2.2)."""

    __tablename__ = "entitlements"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), index=True)
    serial: Mapped[str | None] = mapped_column(String(200))
    valid_from: Mapped[date] = mapped_column(Date)
    valid_to: Mapped[date] = mapped_column(Date)
    in_production: Mapped[bool] = mapped_column(Boolean)
    end_of_support: Mapped[date | None] = mapped_column(Date)
    product: Mapped[Product] = relationship()
    customer: Mapped[Customer] = relationship()


class SocStaff(Base):
    __tablename__ = "soc_staff"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32))  # analyst, team_leader, duty_manager


# --- mail in ----------------------------------------------------------------------------------


class StoredMail(Base):
    """Every accepted mail, byte for byte, stored once (R6.2). Status says where it went."""

    __tablename__ = "raw_mails"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    dedup_key: Mapped[str] = mapped_column(String(64), unique=True)
    message_id: Mapped[str | None] = mapped_column(String(998))
    source: Mapped[str] = mapped_column(String(8))  # smtp | imap
    mail_from: Mapped[str | None] = mapped_column(String(320))  # envelope; None over IMAP
    peer: Mapped[str | None] = mapped_column(String(64))  # connecting IP (SMTP)
    helo: Mapped[str | None] = mapped_column(String(255))  # EHLO/HELO name (SMTP)
    rcpt_tos: Mapped[list[str]] = mapped_column(JSON)
    sender: Mapped[str] = mapped_column(String(320))  # From header address
    subject: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(16))  # accepted | review | bounce | quarantined
    reason: Mapped[str] = mapped_column(Text, default="")
    authentication: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # the sender's verdict
    # A bounce's recipients that failed for good (parsers.dsn); None for any other mail.
    failed_recipients: Mapped[list[str] | None] = mapped_column(JSON)
    received_at: Mapped[datetime]
    __table_args__ = (Index("ix_raw_mails_status_received", "status", "received_at"),)


class DomainPolicy(Base):
    """R6.4: what a sender domain's mail must show to open or update an SR."""

    __tablename__ = "domain_policies"
    domain: Mapped[str] = mapped_column(String(253), primary_key=True)
    policy: Mapped[str] = mapped_column(String(16))  # dmarc | dkim_or_spf | none
    updated_at: Mapped[datetime]


class ServiceRequest(Base):
    __tablename__ = "service_requests"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(16), unique=True)  # SR-XXXX-XXXX
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    requester_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    title: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(40))
    priority: Mapped[int] = mapped_column(Integer)
    requested_priority: Mapped[int | None] = mapped_column(Integer)
    requested_reason: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(24))  # open, waiting, resolved, closed
    language: Mapped[str] = mapped_column(String(2))
    entitlement: Mapped[dict[str, Any]] = mapped_column(JSON)
    follow_up_of_id: Mapped[int | None] = mapped_column(ForeignKey("service_requests.id"))
    assigned_to: Mapped[str | None] = mapped_column(String(320))  # an analyst's address
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    initial_response_at: Mapped[datetime | None]  # §3.5.3: the SOC's first answer
    last_soc_update_at: Mapped[datetime | None]  # §3.5.4: what "not updated" is measured from
    closed_at: Mapped[datetime | None]
    tam_notified_at: Mapped[datetime | None]  # §3.10: when the TAM heard of it
    customer: Mapped[Customer] = relationship()
    requester: Mapped[Contact | None] = relationship()
    __table_args__ = (Index("ix_service_requests_customer_state", "customer_id", "state"),)


class Message(Base):
    """One mail on an SR, in or out."""

    __tablename__ = "messages"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    sr_id: Mapped[int] = mapped_column(ForeignKey("service_requests.id"), index=True)
    raw_mail_id: Mapped[int | None] = mapped_column(ForeignKey("raw_mails.id"))
    direction: Mapped[str] = mapped_column(String(3))  # in | out
    author_kind: Mapped[str] = mapped_column(String(16))  # contact | soc | automatic
    author_address: Mapped[str] = mapped_column(String(320))
    author_name: Mapped[str] = mapped_column(String(200))
    message_id: Mapped[str | None] = mapped_column(String(998))
    subject: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    reply_text: Mapped[str] = mapped_column(Text)
    html: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(2))
    internal: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # internal: a SOC note, never relayed to the customer
    created_at: Mapped[datetime]
    attachments: Mapped[list[AttachmentRow]] = relationship(order_by="AttachmentRow.id")


class AttachmentRow(Base):
    """A diagnostic file (§3.7), byte for byte (R1.7)."""

    __tablename__ = "attachments"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes] = mapped_column(LargeBinary)


class ThreadRef(Base):
    """A Message-ID the gateway received or sent, and the SR it belongs to (R1.6)."""

    __tablename__ = "thread_refs"
    message_id: Mapped[str] = mapped_column(String(998), primary_key=True)
    sr_id: Mapped[int] = mapped_column(ForeignKey("service_requests.id"), primary_key=True)


# --- mail out ---------------------------------------------------------------------------------


class Delivery(Base):
    """The outbox: one row per outgoing mail, written in the transaction that decided it."""

    __tablename__ = "deliveries"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    sr_id: Mapped[int | None] = mapped_column(ForeignKey("service_requests.id"), index=True)
    raw_mail_id: Mapped[int | None] = mapped_column(ForeignKey("raw_mails.id"))
    template: Mapped[str] = mapped_column(String(64))  # <subject>_<event>
    audience: Mapped[str] = mapped_column(String(16))  # customer | soc
    language: Mapped[str] = mapped_column(String(2))
    recipient: Mapped[str] = mapped_column(String(320))
    context: Mapped[dict[str, Any]] = mapped_column(JSON)
    message_id: Mapped[str] = mapped_column(String(998), unique=True)
    in_reply_to: Mapped[str | None] = mapped_column(String(998))
    references: Mapped[str] = mapped_column(Text, default="")
    auto_submitted: Mapped[str] = mapped_column(String(20))  # auto-replied | auto-generated
    queue: Mapped[str] = mapped_column(String(16), default="mail")
    status: Mapped[str] = mapped_column(String(8))  # pending | sending | sent | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    enqueued_at: Mapped[datetime | None]
    claimed_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
    __table_args__ = (
        Index("ix_deliveries_status_next", "status", "next_attempt_at"),
        Index("ix_deliveries_recipient_template", "recipient", "template", "created_at"),
        # counting a recipient's automatic replies of the last day (R6.1) is an index range
        Index("ix_deliveries_recipient_auto", "recipient", "auto_submitted", "created_at"),
    )


class Deadline(Base):
    """One running clock (R3.3): a target on an SR, an escalation's Director step, a daily job.

    `next_at` is when the clock must look at it next (its warning, then its due time); NULL once
    nothing more is to be done. The clock reads only this indexed column.
    """

    __tablename__ = "deadlines"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    sr_id: Mapped[int | None] = mapped_column(ForeignKey("service_requests.id"), index=True)
    escalation_id: Mapped[int | None] = mapped_column(ForeignKey("escalations.id"))
    kind: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[datetime]
    due_at: Mapped[datetime]
    warn_at: Mapped[datetime | None]
    warned_at: Mapped[datetime | None]
    breached_at: Mapped[datetime | None]
    met_at: Mapped[datetime | None]
    next_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    __table_args__ = (
        Index("ix_deadlines_next_at", "next_at"),
        # one row per daily job (a Deadline of no SR and no escalation)
        Index(
            "uq_deadlines_job",
            "kind",
            unique=True,
            sqlite_where=text("sr_id IS NULL AND escalation_id IS NULL"),
            postgresql_where=text("sr_id IS NULL AND escalation_id IS NULL"),
        ),
    )


class Escalation(Base):
    """§3.5.5: an escalation of an SR, to Duty Management and, if it stays open, to Directors."""

    __tablename__ = "escalations"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    sr_id: Mapped[int] = mapped_column(ForeignKey("service_requests.id"), index=True)
    source: Mapped[str] = mapped_column(String(16))  # customer | soc
    requested_by: Mapped[str] = mapped_column(String(320))
    reason: Mapped[str] = mapped_column(Text, default="")
    level: Mapped[str] = mapped_column(String(24))  # duty_management | director
    opened_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    steps: Mapped[list[EscalationStep]] = relationship(order_by="EscalationStep.id")


class EscalationStep(Base):
    """What happened in an escalation, for later analysis (§3.5.5: "tracked centrally")."""

    __tablename__ = "escalation_steps"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    escalation_id: Mapped[int] = mapped_column(ForeignKey("escalations.id"), index=True)
    at: Mapped[datetime]
    step: Mapped[str] = mapped_column(String(40))
    detail: Mapped[str] = mapped_column(Text, default="")


class ImapState(Base):
    """Where the poller of one mailbox stands (RFC 3501 §2.3.1.1: UIDs hold per UIDVALIDITY)."""

    __tablename__ = "imap_states"
    mailbox: Mapped[str] = mapped_column(String(500), primary_key=True)
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime]
