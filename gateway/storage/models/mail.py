"""Mail in and the Service Requests it makes: every stored mail, SRs, messages, files, threads."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gateway.storage.models.base import Base, Id
from gateway.storage.models.directory import Contact, Customer


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
    # A mail over 1 MB (storage/blobs.py): its bytes here, `data` empty. The last column of the
    # table (migration 0014), where SQLite writes a blob in pieces; a column added later goes
    # after it, and the next large mail is held whole in memory again.
    content: Mapped[bytes | None] = mapped_column(LargeBinary)
    __table_args__ = (Index("ix_raw_mails_status_received", "status", "received_at"),)

    @property
    def raw(self) -> bytes:
        """The mail as it arrived, wherever it is kept."""
        return bytes(self.content if self.content is not None else self.data)


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
    """A diagnostic file (§3.7), byte for byte (R1.7): its bytes in `data`, or a large one's
    place in its stored mail (parsers/large.py InPlace), decoded when it is read
    (gateway/outbound/sending.py): no second copy of a large mail is written."""

    __tablename__ = "attachments"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    # In place: its encoded body is raw[raw_start:raw_start + raw_length] of this stored mail.
    raw_mail_id: Mapped[int | None] = mapped_column(ForeignKey("raw_mails.id"))
    raw_start: Mapped[int | None] = mapped_column(Integer)
    raw_length: Mapped[int | None] = mapped_column(Integer)
    transfer_encoding: Mapped[str | None] = mapped_column(String(40))  # RFC 2045 §6, lower-case
    data: Mapped[bytes] = mapped_column(LargeBinary)  # last: written in pieces (storage/blobs.py)


class ThreadRef(Base):
    """A Message-ID the gateway received or sent, and the SR it belongs to (R1.6)."""

    __tablename__ = "thread_refs"
    message_id: Mapped[str] = mapped_column(String(998), primary_key=True)
    sr_id: Mapped[int] = mapped_column(ForeignKey("service_requests.id"), primary_key=True)


class ImapState(Base):
    """Where the poller of one mailbox stands (RFC 3501 §2.3.1.1: UIDs hold per UIDVALIDITY)."""

    __tablename__ = "imap_states"
    mailbox: Mapped[str] = mapped_column(String(500), primary_key=True)
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime]
