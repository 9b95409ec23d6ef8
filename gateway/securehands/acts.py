"""What every SecureHands use-case takes and gives: who asks, when, in which transaction; what
was done and the mails it wrote; or the reason it was refused (R2.2: confirmed or refused)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from gateway.core.runtime import Runtime

Deliveries = tuple[tuple[int, str], ...]  # (Delivery id, queue), enqueued after the commit


@dataclass(frozen=True)
class Act:
    """One request of the SOC (a mail command or a command line), in its transaction."""

    conn: Connection
    rt: Runtime
    by: str  # the SOC staff address, or "cli"
    now: datetime


@dataclass(frozen=True)
class Done:
    detail: str  # how the confirmation states it
    deliveries: Deliveries = ()


class Refused(ValueError):
    """What was asked cannot be done; the message is the reason, as the refusal states it."""
