"""Step 0: a running gateway's parts put together: the engine (migrated), the resolver, the outbox.

Entry points (the `gateway` command, `dramatiq workers.main`, the tests) call `build` once and
hand the Runtime to everything else.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from gateway.core.runtime import Runtime, utcnow
from gateway.core.settings import Settings
from gateway.intake.dns import Resolver
from gateway.outbound.outbox import Outbox, make_broker
from gateway.storage.db import make_engine, make_sessions, prepare


def build(
    settings: Settings,
    *,
    outbox: Outbox | None = None,
    clock: Callable[[], datetime] = utcnow,
    writes: bool = True,
) -> Runtime:
    """Connect, migrate the schema if needed, and wire the outbox.

    Without an `outbox`, one is made for GATEWAY_BROKER_URL. A caller that only reads
    (`writes=False`) never upgrades a schema: one behind raises SchemaBehind (storage/db.py).
    """
    engine = make_engine(settings.database, pool_size=max(10, settings.smtp_workers + 4))
    prepare(engine, writes=writes)
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
