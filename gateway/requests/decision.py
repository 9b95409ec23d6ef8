"""What a decision is made of: the facts of a mail, the action, the notices it asks for.

Intake decides (gateway/intake/triage.py holds the rules); this stage carries it out, so the
words of a decision are defined here, where both can read them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Connection

from gateway.core.runtime import Runtime
from gateway.core.vocabulary import Audience, State
from gateway.directory.queries import Sender
from gateway.storage.records import RequestRow
from gateway.sus.mail import SusFacts
from parsers.commands import Commands
from parsers.mail import ParsedMail
from parsers.signals import PriorityRequest


class Action(StrEnum):
    OPEN = "open"  # a new Service Request
    ADD = "add"  # a message on the SR the mail threads onto
    REOPEN = "reopen"  # add, and a resolved SR is open again
    FOLLOW_UP = "follow_up"  # a new SR linked to the closed one the mail answers
    ANSWER = "answer"  # the SOC answers on an SR: stored, commands run, relayed to the customer
    NOTE = "note"  # the SOC adds an internal note (and maybe commands); never relayed
    HOLD = "hold"  # stored for review, opens and updates nothing
    BOUNCE = "bounce"  # a delivery report, stored for bounce handling (R4.4, gateway/sus)
    COMPLAINT = "complaint"  # an ARF feedback report: held; one about a bulletin unsubscribes
    SUBSCRIPTION = "subscription"  # a contact asks to subscribe or unsubscribe (R4.2)
    UNSUBSCRIBE = "unsubscribe"  # by the token of a bulletin's List-Unsubscribe mailto (R4.3)
    APPROVAL = "approval"  # an admin answers a subscription request's notice (R4.2)


@dataclass(frozen=True)
class Thread:
    """An SR a mail may answer."""

    sr_id: int
    public_id: str
    state: State
    customer_id: int
    title: str = ""  # what a reply's subject repeats of it asks for nothing new
    priority: int = 3


@dataclass(frozen=True)
class Facts:
    """Everything triage reads; gathered by intake from the mail and the database."""

    mail: ParsedMail
    now: datetime  # the one reading of the clock for this mail
    sender: Sender
    thread: Thread | None
    foreign_thread: bool  # named an SR the sender does not belong to
    automatic: str | None  # RFC 3834 reason, or None
    bounce: str | None
    looped: bool  # the gateway's own mail came back
    requested: PriorityRequest | None
    noticed_recently: bool  # this sender already had a notice within the interval
    reply_text: str = ""  # the newest part of the mail, quoted history and signature removed
    language: str | None = None  # en, de or fr as detected in the mail
    commands: Commands = field(default_factory=lambda: Commands((), (), ""))  # SOC staff only
    to_note_address: bool = False
    escalation_asked: bool = False  # a contact asks to escalate (keyword or escalation address)
    authenticated: bool = True  # the sender's verdict satisfies its domain's policy (R6.4)
    verification: str | None = None  # a third party's sign-up or verification mail
    autoreply_allowed: bool = True  # under the per-address and per-SR limits (R6.1)
    sus: SusFacts = field(default_factory=SusFacts)  # what it is to the Support Update Service


@dataclass(frozen=True)
class Opening:
    """What opening an SR found out, for the mails about it (R1.5, R1.9, R1.10)."""

    target: str  # the initial-response target, as mails state it
    due_at: str  # when it is due, in the customer's zone
    entitlement: dict[str, object]  # requests/entitlements.py Coverage
    requested_reason: str
    follow_up_of: str | None  # the closed SR this one follows up
    rca: bool  # a Root Cause Analysis was asked for (§3.5.6)


@dataclass(frozen=True)
class Occasion:
    """What a notice's writer is handed: the transaction, the facts, the stored mail's id, the
    Message made of it (None when it was held), the SR, and what opening it found out."""

    conn: Connection
    rt: Runtime
    facts: Facts
    stored: int
    message: int | None = None
    sr: RequestRow | None = None
    opening: Opening | None = None


# The Delivery written, or None when a limit shared with other processes took the notice away
NoticeWriter = Callable[[Occasion, "Notice"], tuple[int, str] | None]


def _always(_facts: Facts) -> bool:
    return True


@dataclass(frozen=True)
class Notice:
    """A mail the decision asks for: a template for an audience, written by `write` if `when`
    holds."""

    template: str
    audience: Audience
    write: NoticeWriter
    when: Callable[[Facts], bool] = _always
    to_sender: bool = False  # addressed to the mail's sender (not to the SOC's own addresses)


@dataclass(frozen=True)
class Decision:
    action: Action
    rule: str
    notices: tuple[Notice, ...]
    escalate: bool = False


class NotOnAnSR(LookupError):
    """A decision that acts on an SR was carried out for a mail that threads onto none."""


class NotFromAContact(LookupError):
    """A decision that opens an SR was carried out for a sender who is not a contact."""


class NoRequest(LookupError):
    """A notice about an SR was asked for where there is no SR."""
