"""Customers and their contacts (§5.1.1): who may open and update a customer's SRs."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.directory.checks import DirectoryError, address, choice
from gateway.storage.models import (
    Bounce,
    Contact,
    Customer,
    Entitlement,
    ServiceRequest,
    Subscription,
    SubscriptionRequest,
)

LANGUAGES = ("en", "de", "fr")
CONTACT_ROLES = ("technical_contact", "account_manager", "service_delivery_manager", "tam")


def add_customer(
    session: Session,
    name: str,
    now: datetime,
    *,
    timezone: str = "Europe/Berlin",
    country: str = "DE",
    subdivision: str | None = None,
) -> Customer:
    if customer_named(session, name) is not None:
        raise DirectoryError(f"customer {name!r} exists already")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise DirectoryError(f"unknown time zone {timezone!r}") from exc
    country = country.upper()
    if country not in holidays.list_supported_countries():
        raise DirectoryError(f"no public holidays known for country {country!r}")
    customer = Customer(
        name=name.strip(),
        timezone=timezone,
        country=country,
        subdivision=subdivision or None,
        created_at=now,
    )
    session.add(customer)
    session.flush()
    return customer


def customer_named(session: Session, name: str) -> Customer | None:
    return session.scalar(select(Customer).where(Customer.name == name.strip()))


def require_customer(session: Session, name: str) -> Customer:
    customer = customer_named(session, name)
    if customer is None:
        raise DirectoryError(f"no customer named {name!r}")
    return customer


def remove_customer(session: Session, name: str) -> None:
    customer = require_customer(session, name)
    if session.scalar(select(ServiceRequest.id).where(ServiceRequest.customer_id == customer.id)):
        raise DirectoryError(f"customer {name!r} has Service Requests; remove its contacts instead")
    if _has_subscriptions(session, customer.id):
        # R4.2: the audit trail of its contacts' subscriptions is kept, as their SRs are
        raise DirectoryError(f"customer {name!r} has subscriptions; remove its contacts instead")
    for entitlement in session.scalars(
        select(Entitlement).where(Entitlement.customer_id == customer.id)
    ):
        session.delete(entitlement)
    for contact in list(customer.contacts):
        session.delete(contact)
    session.delete(customer)


def _has_subscriptions(session: Session, customer_id: int) -> bool:
    """A contact of the customer was ever subscribed, asked by mail, or bounced (R4.2, R4.4)."""
    of_customer = select(Contact.id).where(Contact.customer_id == customer_id)
    return any(
        session.scalar(select(model.id).where(model.contact_id.in_(of_customer)).limit(1))
        for model in (Subscription, SubscriptionRequest, Bounce)
    )


# --- contacts ---------------------------------------------------------------------------------


def add_contact(
    session: Session,
    customer: Customer,
    email: str,
    name: str,
    now: datetime,
    *,
    language: str = "en",
    role: str = "technical_contact",
) -> tuple[Contact, bool]:
    """Add a contact, or update one of the same customer. Returns (contact, created)."""
    email = address(email)
    language = choice(language or "en", LANGUAGES, "language")
    role = choice(role or "technical_contact", CONTACT_ROLES, "role")
    contact = session.scalar(select(Contact).where(Contact.email == email))
    if contact is not None and contact.customer_id != customer.id and contact.removed_at is None:
        raise DirectoryError(
            f"{email} is a contact of {contact.customer.name!r}; remove it there first"
        )
    created = contact is None or contact.removed_at is not None
    if contact is None:
        contact = Contact(
            email=email,
            customer_id=customer.id,
            name="",
            language=language,
            role=role,
            created_at=now,
        )
        session.add(contact)
    contact.customer_id, contact.name = customer.id, name.strip() or email
    contact.language, contact.role, contact.removed_at = language, role, None
    session.flush()
    return contact, created


def remove_contact(session: Session, email: str, now: datetime) -> Contact:
    """A leaver (§5.1.1, R1.8): no longer a contact; its SRs and audit trail stay. Its
    subscriptions are the caller's to end in the same transaction (gateway/sus/changes.py
    `end_all`: the Support Update Service is a room above the directory)."""
    contact = session.scalar(
        select(Contact).where(Contact.email == address(email), Contact.removed_at.is_(None))
    )
    if contact is None:
        raise DirectoryError(f"no contact {email!r}")
    contact.removed_at = now
    return contact


def contacts(session: Session, customer: Customer | None = None) -> list[Contact]:
    query = select(Contact).where(Contact.removed_at.is_(None)).order_by(Contact.email)
    if customer is not None:
        query = query.where(Contact.customer_id == customer.id)
    return list(session.scalars(query))


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    errors: list[str] = field(default_factory=list)


def import_contacts(session: Session, customer_name: str, text: str, now: datetime) -> ImportReport:
    """CSV with columns email, name, language, role; the customer is created if it is new.

    Every row is checked; rows with errors are reported and skipped, the others are kept.
    """
    customer = customer_named(session, customer_name) or add_customer(session, customer_name, now)
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = {h.strip().lower() for h in reader.fieldnames or []}
    if "email" not in header:
        raise DirectoryError("the CSV needs a header row with at least the column 'email'")
    report = ImportReport()
    for line, raw_row in enumerate(reader, start=2):
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in raw_row.items()}
        try:
            with session.begin_nested():
                _, created = add_contact(
                    session,
                    customer,
                    row.get("email", ""),
                    row.get("name", ""),
                    now,
                    language=row.get("language") or "en",
                    role=row.get("role") or "technical_contact",
                )
        except DirectoryError as exc:
            report.errors.append(f"line {line}: {exc}")
            continue
        if created:
            report.created += 1
        else:
            report.updated += 1
    return report
