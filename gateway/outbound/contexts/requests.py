"""The contexts of the mails about a customer's mail: acknowledgement, the SOC's copy, alerts,
the unregistered-sender notice, command results, relayed answers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.outbound.contexts.base import AboutRequest, Context, InLanguage


@dataclass(frozen=True, kw_only=True)
class Basics(AboutRequest):
    """What every mail about a customer's SR states."""

    type: str
    soc_phone: str
    soc_address: str


@dataclass(frozen=True, kw_only=True)
class OpeningFacts(Context):
    """What an SR's opening found out (requests/decision.py `Opening`), as its mails state it."""

    target: str
    due_at: str
    entitlement: dict[str, Any]
    requested_reason: str
    follow_up_of: str | None
    rca: bool


@dataclass(frozen=True, kw_only=True)
class RequestOpenedCustomer(Basics, OpeningFacts, InLanguage):
    """R1.5: the acknowledgement: SR ID, priority, target, telephone, how to reply."""

    requested_priority: int | None
    contact_name: str
    telephone_first: bool  # R1.4: a P1 asked for by mail: telephone the SOC first


@dataclass(frozen=True, kw_only=True)
class FileInfo:
    name: str
    size: int


@dataclass(frozen=True, kw_only=True)
class FromCustomer(Basics):
    customer: str
    requester: str
    requester_address: str


@dataclass(frozen=True, kw_only=True)
class CustomerMail(FromCustomer):
    """R2.1: a customer's mail as the SOC queue gets it, to be answered from there."""

    requested_priority: int | None
    state: str
    text: str
    subject: str
    attachments: list[FileInfo]
    files: list[int]  # attachment ids sent with the copy (workers/actors.py)
    files_held: int
    escalation_asked: bool
    note_address: str


@dataclass(frozen=True, kw_only=True)
class RequestOpenedSoc(CustomerMail, OpeningFacts):
    pass


@dataclass(frozen=True, kw_only=True)
class CustomerRepliedSoc(CustomerMail):
    pass


@dataclass(frozen=True, kw_only=True)
class Priority1Requested(FromCustomer):
    """R1.4: a P1 asked for by mail; the SOC hears at once."""

    reason: str
    excerpt: str


@dataclass(frozen=True, kw_only=True)
class SenderUnregistered(InLanguage):
    """R1.8: the one polite notice; nothing of the sender's mail is in it."""

    soc_phone: str
    soc_address: str


@dataclass(frozen=True, kw_only=True)
class Outcome:
    line: str
    done: bool
    detail: str


@dataclass(frozen=True, kw_only=True)
class CommandResult(Context):
    """R2.2: each command confirmed, or refused with its reason."""

    sr_id: str | None
    title: str
    outcomes: list[Outcome]


@dataclass(frozen=True, kw_only=True)
class SocAnswer(InLanguage):
    """R2.1: an analyst's answer, relayed to the customer."""

    sr_id: str
    title: str
    body: str
    analyst: str
    contact_name: str
    soc_phone: str
    files: list[int] = field(default_factory=list)  # attachment ids sent with it
