"""What every use-case is handed: settings, sessions, the outbox, the signing keys and the clock."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from gateway.config import Settings
from gateway.db import Sessions, make_engine, make_sessions, migrate
from gateway.dns import Resolver
from gateway.outbox import Outbox, make_broker


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


def build(
    settings: Settings,
    *,
    outbox: Outbox | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> Runtime:
    """Connect, migrate the schema if needed, and wire the outbox. Entry points call this once.

    Without an `outbox`, one is made for GATEWAY_BROKER_URL.
    """
    engine = make_engine(settings.database, pool_size=max(10, settings.smtp_workers + 4))
    migrate(engine)
    resolver = Resolver(settings.dns_servers)
    resolver.install()
    return Runtime(
        settings=settings,
        sessions=make_sessions(engine),
        outbox=outbox if outbox is not None else Outbox(make_broker(settings.broker_url)),
        keys=settings.hmac_keys,
        resolver=resolver,
        clock=clock,
    )
