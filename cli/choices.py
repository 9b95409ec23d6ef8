"""The fixed sets of values that options of `gateway …` accept: typer refuses any other at once.

Each mirrors a table of the gateway (tests/test_cli.py checks that they agree); a StrEnum member
is the string itself, so it is handed on as it is.
"""

from __future__ import annotations

from enum import StrEnum

from gateway.core.vocabulary import DeliveryStatus, State
from gateway.core.vocabulary import StoredStatus as ReviewStatus
from gateway.sus.vocabulary import Kind, Severity

__all__ = [
    "ContactRole",
    "DeliveryStatus",
    "Kind",
    "Language",
    "Policy",
    "ReviewStatus",
    "Severity",
    "StaffRole",
    "State",
]


class Language(StrEnum):
    """A contact's language (gateway/directory/contacts.py LANGUAGES)."""

    en = "en"
    de = "de"
    fr = "fr"


class ContactRole(StrEnum):
    """gateway/directory/contacts.py CONTACT_ROLES."""

    technical_contact = "technical_contact"
    account_manager = "account_manager"
    service_delivery_manager = "service_delivery_manager"
    tam = "tam"


class StaffRole(StrEnum):
    """gateway/directory/staff.py STAFF_ROLES."""

    analyst = "analyst"
    team_leader = "team_leader"
    duty_manager = "duty_manager"


class Policy(StrEnum):
    """What a sender domain's mail must prove (R6.4; gateway/directory/domains.py POLICIES)."""

    dmarc = "dmarc"
    dkim_or_spf = "dkim_or_spf"
    none = "none"
