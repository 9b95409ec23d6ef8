"""The words of the Support Update Service (§3.8, R4.2): kinds of bulletin, a subscription's
states, how a change was asked for and by whom; what is wrong with one that cannot be made."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Kind(StrEnum):
    """What a bulletin is about (§3.8): patches, upgrades, technical bulletins."""

    patch = "patch"
    upgrade = "upgrade"
    bulletin = "bulletin"


class Severity(StrEnum):
    """How urgent a bulletin is, as its manufacturer rates the advisory."""

    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"


class SubscriptionState(StrEnum):
    pending = "pending"  # asked for, waiting for an admin (GATEWAY_SUS_SUBSCRIBE_POLICY=admin)
    active = "active"  # receives the product's bulletins of its kinds
    suspended = "suspended"  # its address kept bouncing (R4.4); an admin or a delivery resumes it
    unsubscribed = "unsubscribed"  # R4.3: at once, whoever asked


class RequestState(StrEnum):
    """What became of a request by mail (R4.2)."""

    pending = "pending"  # waiting for an admin (GATEWAY_SUS_SUBSCRIBE_POLICY=admin)
    approved = "approved"
    denied = "denied"
    done = "done"  # carried out at once (an unsubscribe; a subscribe under `immediate`)


class How(StrEnum):
    """How a change was asked for (the audit trail's `how`)."""

    cli = "cli"
    mail = "mail"
    one_click = "one-click"
    web = "web"
    bounce = "bounce"


ALL_KINDS = tuple(Kind)
BOUNCES = "bounces"  # who the bounce processor is in the audit trail


class SubscriptionError(ValueError):
    """A subscription change that cannot be made; the message says why."""


@dataclass(frozen=True)
class Change:
    """Who asks for a change and how (R4.2: every change is kept with who and how)."""

    by: str
    how: How
    now: datetime
    message_id: str | None = None
    detail: str = ""


def kinds_of(value: str | Iterable[str] | None) -> list[str]:
    """`patch,upgrade` (or a list) as the kinds it names, in their order; none named: all."""
    names = value.split(",") if isinstance(value, str) else list(value or [])
    wanted = [name.strip().lower() for name in names if name.strip()]
    unknown = [name for name in wanted if name not in ALL_KINDS]
    if unknown:
        raise SubscriptionError(f"unknown kind {unknown[0]!r}: one of {', '.join(ALL_KINDS)}")
    return [kind for kind in ALL_KINDS if kind in wanted] or list(ALL_KINDS)
