"""Entry point of `dramatiq workers.main`: workers as separate processes, at scale.

Reads the same settings as `gateway` (GATEWAY_* and the TOML file); needs GATEWAY_BROKER_URL.
"""

from __future__ import annotations

import logging

import dramatiq

from gateway.assembly import build
from gateway.core.settings import ConfigError, load
from gateway.observe import logs
from workers.actors import declare
from workers.render import Renderer
from workers.signing import SigningKeyError
from workers.transport import make_transport

try:
    settings = load()
except ConfigError as exc:
    lines = (f"error: invalid configuration: {problem}" for problem in exc.problems)
    raise SystemExit("\n".join(lines)) from None
if not settings.broker_url:
    raise SystemExit("dramatiq workers need GATEWAY_BROKER_URL (amqp://… or redis://…)")
# over dramatiq's own set-up (its level, from -v, is kept), or alone with --skip-logging
logs.configure(settings.log_format, None if logging.getLogger().handlers else logging.INFO)
runtime = build(settings)
broker = runtime.outbox.broker
dramatiq.set_broker(broker)
try:
    transport = make_transport(
        settings.outbound, settings.outbound_ca_file, lanes=settings.bulk_connections
    )
    actors = declare(broker, runtime, transport, Renderer())
except SigningKeyError as exc:
    raise SystemExit(f"error: cannot start: {exc}") from None
