"""The contexts of the Support Update Service's mails (§3.8, R4.2, R4.4), English only (R1.11):
a contact's confirmation, the admins' notice of a request and of a suspension, the result of an
admin's mail command."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.outbound.contexts.base import Context


@dataclass(frozen=True, kw_only=True)
class ProductLine:
    product: str
    detail: str  # the kinds, or why not


@dataclass(frozen=True, kw_only=True)
class SusConfirmation(Context):
    """R4.2: the one confirmation of what a contact's request came to."""

    contact_name: str
    # subscribed | unsubscribed | denied | unchanged | unclear
    outcome: str
    done: list[ProductLine]  # what was subscribed or stopped
    refused: list[ProductLine]  # products not subscribed, and why
    reason: str  # an admin's reason for denying
    sus_address: str
    soc_phone: str


@dataclass(frozen=True, kw_only=True)
class SusRequest(Context):
    """R4.2: an admin is told of a subscription waiting for approval."""

    request_id: int
    contact: str
    contact_name: str
    customer: str
    products: list[ProductLine]
    mail_subject: str  # the subject of the contact's mail
    excerpt: str


@dataclass(frozen=True, kw_only=True)
class SusCommand(Context):
    """R4.2: an admin's `#approve` or `#deny` carried out, or refused with the reason."""

    request_id: int | None
    line: str
    done: bool
    detail: str


@dataclass(frozen=True, kw_only=True)
class BounceLine:
    at: str
    source: str  # verp | dsn | smtp
    reason: str


@dataclass(frozen=True, kw_only=True)
class SusSuspended(Context):
    """R4.4: an address kept bouncing; its subscriptions are suspended."""

    contact: str
    contact_name: str
    customer: str
    products: list[str]
    score: float
    threshold: float
    bounces: list[BounceLine]
