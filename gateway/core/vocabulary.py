"""The fixed vocabularies that cross stages: an SR's states, a stored mail's statuses, who a
sender is, a Delivery's audiences and statuses. A StrEnum member is its string, as stored."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

SenderKind = Literal["contact", "soc", "unknown"]  # who the From address is in the directory


class State(StrEnum):
    """An SR's state: waiting is for the customer; resolved reopens on a reply; closed does not."""

    open = "open"
    waiting = "waiting"
    resolved = "resolved"
    closed = "closed"


OPEN_STATES = (State.open, State.waiting)  # what the daily review and the clock look at


class StoredStatus(StrEnum):
    """What became of a stored mail (raw_mails.status)."""

    accepted = "accepted"  # it opened or updated an SR
    review = "review"  # held: it opened nothing (R1.8), waits for an admin
    bounce = "bounce"  # a delivery report, kept with its failed recipients
    quarantined = "quarantined"  # could not be processed, kept whole (R6.3)
    dismissed = "dismissed"  # held, looked at by an admin and let be


class Audience(StrEnum):
    """Whom a Delivery is for; its template is `<template>_<audience>`."""

    customer = "customer"
    soc = "soc"
    staff = "staff"


class DeliveryStatus(StrEnum):
    pending = "pending"
    sending = "sending"
    sent = "sent"
    failed = "failed"
    cancelled = "cancelled"  # never sent: its bulletin's subscriber unsubscribed first (R4.3)
