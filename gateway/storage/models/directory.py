"""The directory (§5.1.1): who may write, for which products, and what their domains prove."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    Date,
    ForeignKey,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gateway.storage.models.base import Base, Id


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
    # R4.4: the last permanent failure of mail to this address (an acknowledgement's bounce,
    # a bulletin's), so that the SOC sees a dead address
    bounced_at: Mapped[datetime | None]
    bounce_reason: Mapped[str | None] = mapped_column(Text)
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


class AdminAccount(Base):
    """Who may sign in to the admin web (`gateway admins add`): an address and its argon2 hash.

    `session_epoch` is in every session cookie; signing out (or a new password) moves it on, so
    that every cookie issued before no longer opens anything.
    """

    __tablename__ = "admin_accounts"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)  # stored lower-case
    password_hash: Mapped[str] = mapped_column(String(255))  # argon2id, PHC string
    session_epoch: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    signed_in_at: Mapped[datetime | None]


class DomainPolicy(Base):
    """R6.4: what a sender domain's mail must show to open or update an SR."""

    __tablename__ = "domain_policies"
    domain: Mapped[str] = mapped_column(String(253), primary_key=True)
    policy: Mapped[str] = mapped_column(String(16))  # dmarc | dkim_or_spf | none
    updated_at: Mapped[datetime]
