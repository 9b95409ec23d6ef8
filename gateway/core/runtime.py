"""What every use-case is handed: settings, sessions, the outbox, the signing keys and the clock.

The parts are made by `gateway/assembly.py`; here they are only named, for the type checker,
so that this floor imports nothing of the floors above it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session, sessionmaker

from gateway.core.settings import Settings

if TYPE_CHECKING:
    from gateway.intake.dns import Resolver
    from gateway.outbound.outbox import Outbox

Sessions = sessionmaker[Session]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    sessions: Sessions
    outbox: Outbox
    keys: Mapping[str, bytes]
    resolver: Resolver
    clock: Callable[[], datetime] = utcnow

    def now(self) -> datetime:
        return self.clock()
