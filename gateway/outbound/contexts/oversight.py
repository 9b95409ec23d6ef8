"""The contexts of the oversight mails: escalations, the clock's alerts, the TAM's and the team
leaders' mails."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.outbound.contexts.base import AboutRequest, Context, InLanguage


@dataclass(frozen=True, kw_only=True)
class AboutEscalation(AboutRequest):
    customer: str
    requester: str
    soc_phone: str
    soc_address: str
    duty_management: str


@dataclass(frozen=True, kw_only=True)
class EscalationOpened(AboutEscalation):
    """§3.5.5: Duty Management alerted."""

    reason: str
    requested_by: str
    source: str
    director_at: str


@dataclass(frozen=True, kw_only=True)
class EscalationNotice(EscalationOpened):
    """§3.5.5: the customer's Account Manager (and Service Delivery Manager) notified."""

    name: str
    role: str


@dataclass(frozen=True, kw_only=True)
class EscalationDirector(AboutEscalation):
    """§3.5.5: still open after its time: Director level."""

    reason: str
    requested_by: str
    opened_at: str
    source: str


@dataclass(frozen=True, kw_only=True)
class EscalationRecorded(AboutEscalation, InLanguage):
    """R2.4: the requesting contact is told what happens next."""

    contact_name: str


@dataclass(frozen=True, kw_only=True)
class OnTheClock(AboutRequest):
    """An alert of the clock about an SR (R3.3, §3.5.4)."""

    customer: str
    state: str
    assigned_to: str
    type: str


@dataclass(frozen=True, kw_only=True)
class TargetAlert(OnTheClock):
    """R3.3: a target about to be missed (warning) or missed (breach)."""

    target: str
    due_at: str
    started_at: str
    left: str
    over: str


@dataclass(frozen=True, kw_only=True)
class NotUpdated(OnTheClock):
    """§3.5.4: an open SR without a SOC update for its interval."""

    interval: str
    last_update: str
    since: str


@dataclass(frozen=True, kw_only=True)
class TamNotice(AboutRequest):
    """§3.10, R2.5: the TAM hears of an SR at once (P1/P2)."""

    customer: str
    requested_priority: int | None
    requester: str
    type: str
    name: str


@dataclass(frozen=True, kw_only=True)
class DigestLine:
    sr_id: str
    title: str
    priority: int
    state: str
    opened: str


@dataclass(frozen=True, kw_only=True)
class TamDigest(Context):
    """§3.10: the TAM's daily digest of the customer's other new SRs."""

    name: str
    requests: list[DigestLine]
    day: str


@dataclass(frozen=True, kw_only=True)
class ReviewLine:
    sr_id: str
    title: str
    priority: int
    state: str
    age: str
    assigned_to: str
    last_update: str
    targets: list[str]
    escalation: str


@dataclass(frozen=True, kw_only=True)
class ProgressReview(Context):
    """§3.5.4: the team leaders' daily review of every open SR."""

    name: str
    day: str
    requests: list[ReviewLine]
    total: int
    not_listed: int
