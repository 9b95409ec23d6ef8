"""A small demo customer, so that a newcomer can send a mail with any client and read the answer."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from gateway import directory

CUSTOMER = "Example Corp"
CONTACTS = (  # address, name, language, role
    ("alice@example.com", "Alice Archer", "en", "technical_contact"),
    ("bernd@example.de", "Bernd Müller", "de", "technical_contact"),
    ("chloe@example.fr", "Chloé Dubois", "fr", "technical_contact"),
    ("dana@example.com", "Dana Doyle", "en", "account_manager"),
)
STAFF = (("analyst@securecall.example", "Sam Analyst", "analyst"),)
# The demo's domains have no DNS to prove anything: their mail is accepted unauthenticated (and
# the verdict recorded), so that a newcomer can write from any client. Real ones need DKIM/SPF.
UNAUTHENTICATED_DOMAINS = ("example.com", "example.de", "example.fr", "securecall.example")


def load(session: Session, now: datetime) -> bool:
    """Create the demo directory once; returns False when it was there already."""
    if directory.customer_named(session, CUSTOMER) is not None:
        return False
    customer = directory.add_customer(
        session, CUSTOMER, now, timezone="Europe/Berlin", country="DE"
    )
    for email, name, language, role in CONTACTS:
        directory.add_contact(session, customer, email, name, now, language=language, role=role)
    today = now.date()
    directory.add_entitlement(
        session,
        customer,
        "FortiGate 600E",
        serial="FG6H0E5819900001",
        valid_from=today - timedelta(days=200),
        valid_to=today + timedelta(days=165),
    )
    directory.add_entitlement(
        session,
        customer,
        "Check Point 6200",
        serial="CP6200-77-4411",
        valid_from=today - timedelta(days=800),
        valid_to=today - timedelta(days=70),
    )
    for email, name, role in STAFF:
        directory.add_staff(session, email, name, role)
    for domain in UNAUTHENTICATED_DOMAINS:
        directory.set_domain_policy(session, domain, "none", now)
    return True
