"""The Support Update Service (§3.8, R4.1–R4.4): who receives the bulletins of which product,
every change to that (an append-only audit trail), and the requests contacts make by mail."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gateway.storage.models.base import Base, Id
from gateway.storage.models.directory import Contact, Product


class Subscription(Base):
    """A registered contact × a product × the kinds of bulletin wanted (R4.2)."""

    __tablename__ = "subscriptions"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), index=True)
    kinds: Mapped[list[str]] = mapped_column(JSON)  # patch | upgrade | bulletin
    state: Mapped[str] = mapped_column(String(16))  # pending | active | suspended | unsubscribed
    bounce_score: Mapped[float] = mapped_column(Float, default=0.0)  # R4.4, Mailman's scoring
    last_bounce_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    contact: Mapped[Contact] = relationship()
    product: Mapped[Product] = relationship()
    __table_args__ = (
        UniqueConstraint("contact_id", "product_id", name="uq_subscriptions_contact_product"),
        Index("ix_subscriptions_product_state", "product_id", "state"),
        # the clock looks at the suspended ones on every tick (R4.4: a later delivery resumes)
        Index("ix_subscriptions_state", "state", "updated_at"),
    )


class SubscriptionChange(Base):
    """One change of a subscription, never updated or deleted (R4.2: "kept in an audit trail")."""

    __tablename__ = "subscription_changes"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscriptions.id"), index=True)
    at: Mapped[datetime]
    from_state: Mapped[str | None] = mapped_column(String(16))  # None: it was created
    to_state: Mapped[str] = mapped_column(String(16))
    kinds: Mapped[list[str]] = mapped_column(JSON)  # the kinds after the change
    by: Mapped[str] = mapped_column(String(320))  # an admin's address, the contact, "bounces"
    how: Mapped[str] = mapped_column(String(16))  # cli | mail | one-click | web | bounce
    message_id: Mapped[str | None] = mapped_column(String(998))  # the mail that asked, if any
    detail: Mapped[str] = mapped_column(Text, default="")


class SubscriptionRequest(Base):
    """A contact's request by mail (R4.2: "please contact the SOC"), and what became of it."""

    __tablename__ = "subscription_requests"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    action: Mapped[str] = mapped_column(String(16))  # subscribe | unsubscribe
    product_ids: Mapped[list[int]] = mapped_column(JSON)
    kinds: Mapped[list[str]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16))  # pending | approved | denied | done
    raw_mail_id: Mapped[int | None] = mapped_column(ForeignKey("raw_mails.id"))
    message_id: Mapped[str | None] = mapped_column(String(998))
    created_at: Mapped[datetime]
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[str | None] = mapped_column(String(320))
    reason: Mapped[str] = mapped_column(Text, default="")
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    __table_args__ = (Index("ix_subscription_requests_state", "state", "created_at"),)


class SubscriptionRequestRef(Base):
    """The Message-ID of a request's notice to an admin: an admin's answer (`#approve`,
    `#deny reason`) names the request by answering it, as `thread_refs` does for SRs."""

    __tablename__ = "subscription_request_refs"
    message_id: Mapped[str] = mapped_column(String(998), primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("subscription_requests.id"), index=True)


class Bulletin(Base):
    """An advisory of a product's manufacturer (§3.8), written in Markdown, sent to its
    subscribers of its kind."""

    __tablename__ = "bulletins"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # patch | upgrade | bulletin
    severity: Mapped[str] = mapped_column(String(16))  # low | medium | high | critical
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)  # Markdown
    url: Mapped[str | None] = mapped_column(String(2000))  # the manufacturer's advisory
    state: Mapped[str] = mapped_column(String(16))  # draft | publishing | published
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(320))
    published_at: Mapped[datetime | None]
    published_by: Mapped[str | None] = mapped_column(String(320))
    # When a fan-out last took it or wrote a batch of it: a bulletin left publishing with no
    # fan-out for a while is taken up again by the sweep (a lost broker message, a killed worker).
    fan_out_at: Mapped[datetime | None]
    product: Mapped[Product] = relationship()


class BulletinRecipient(Base):
    """A bulletin's Delivery to one subscription: unique per (bulletin, subscription), so that a
    fan-out run again after a crash writes nobody twice (R4.3: "once")."""

    __tablename__ = "bulletin_recipients"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    bulletin_id: Mapped[int] = mapped_column(ForeignKey("bulletins.id"))
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscriptions.id"), index=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id"), unique=True)
    created_at: Mapped[datetime]
    __table_args__ = (
        UniqueConstraint("bulletin_id", "subscription_id", name="uq_bulletin_recipients_once"),
    )


class Bounce(Base):
    """R4.4: one failure of mail to a contact's address as the bounce processor saw it: a DSN or
    an MTA's bounce (known by its VERP return path or the recipients it names), a refusal at
    send time, an ARF complaint (RFC 5965); and whether it raised the address's score."""

    __tablename__ = "bounces"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    at: Mapped[datetime]
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    subscription_id: Mapped[int | None] = mapped_column(ForeignKey("subscriptions.id"))
    delivery_id: Mapped[int | None] = mapped_column(ForeignKey("deliveries.id"), index=True)
    raw_mail_id: Mapped[int | None] = mapped_column(ForeignKey("raw_mails.id"))
    source: Mapped[str] = mapped_column(String(16))  # verp | dsn | smtp | complaint
    permanent: Mapped[bool] = mapped_column(Boolean)  # temporary failures never count
    counted: Mapped[bool] = mapped_column(Boolean)  # at most one increment per address per day
    reason: Mapped[str] = mapped_column(Text, default="")
