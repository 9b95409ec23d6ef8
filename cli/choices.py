"""The fixed sets of values that options of `gateway …` accept: typer refuses any other at once.

Each mirrors a table of the gateway (tests/test_cli.py checks that they agree); a StrEnum member
is the string itself, so it is handed on as it is.
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    """An SR's state (gateway/soc.py STATES)."""

    open = "open"
    waiting = "waiting"
    resolved = "resolved"
    closed = "closed"


class ReviewStatus(StrEnum):
    """What became of a stored mail that opened nothing."""

    review = "review"
    bounce = "bounce"
    quarantined = "quarantined"
    dismissed = "dismissed"
    feedback = "feedback"
    receipt = "receipt"


class DeliveryStatus(StrEnum):
    pending = "pending"
    sending = "sending"
    sent = "sent"
    failed = "failed"


class Language(StrEnum):
    """A contact's language (gateway/directory.py LANGUAGES)."""

    en = "en"
    de = "de"
    fr = "fr"


class ContactRole(StrEnum):
    """gateway/directory.py CONTACT_ROLES."""

    technical_contact = "technical_contact"
    account_manager = "account_manager"
    service_delivery_manager = "service_delivery_manager"
    tam = "tam"


class StaffRole(StrEnum):
    """gateway/directory.py STAFF_ROLES."""

    analyst = "analyst"
    team_leader = "team_leader"
    duty_manager = "duty_manager"


class Policy(StrEnum):
    """What a sender domain's mail must prove (R6.4; gateway/authentication.py POLICIES)."""

    dmarc = "dmarc"
    dkim_or_spf = "dkim_or_spf"
    none = "none"
