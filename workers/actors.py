"""Step 10: the Dramatiq actors: `send_delivery*` (a Delivery id in, idempotent, 4xx retried),
`send_deliveries_bulk` (a chunk of a bulletin's ids, workers/bulk.py) and `fan_out_bulletin`
(a bulletin's audience written as Deliveries, gateway/sus/fanout.py); each mail DKIM-signed when
a key is configured (R6.7, workers/signing.py)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dramatiq

from gateway.core.runtime import Runtime
from gateway.core.vocabulary import DeliveryStatus
from gateway.observe import metrics
from gateway.outbound import sending
from gateway.outbound.outbox import ACTORS, BULK_QUEUE, FAN_OUT_BULLETIN, PRIORITIES, QUEUES
from gateway.storage.db import transaction
from gateway.sus.fanout import fan_out
from workers.bulk import backoff, deliver_bulk, message_bytes, record
from workers.composer import envelope_sender
from workers.render import Renderer, RenderError
from workers.signing import Signer
from workers.transport import PermanentFailure, TemporaryFailure, Transport

log = logging.getLogger(__name__)
# ms: a fan-out of 50,000 takes seconds, and Dramatiq would stop any actor after 10 minutes
FAN_OUT_TIME_LIMIT = 3_600_000


def deliver(
    delivery_id: int,
    rt: Runtime,
    transport: Transport,
    renderer: Renderer,
    signer: Signer | None = None,
) -> str:
    """Claim, render, compose, sign, send, record. Returns the Delivery's new status, or
    `skipped`."""
    started = time.perf_counter()
    delivery = record(rt, lambda conn: sending.claim_delivery(conn, delivery_id, rt.now()))
    if delivery is None:
        return "skipped"  # already sent, failed, or being sent by someone else
    outcome = _Outcome(delivery, started)
    try:
        data = message_bytes(delivery, rt, renderer, signer)
        transport.send(data, envelope_sender(delivery, rt.settings), [delivery.recipient])
    except (PermanentFailure, RenderError, ValueError) as exc:
        return _finish(rt, outcome, DeliveryStatus.failed, f"{type(exc).__name__}: {exc}")
    except Exception as exc:  # TemporaryFailure, or anything unforeseen: try again later
        if delivery.attempts >= rt.settings.send_attempts:
            error = f"gave up after {delivery.attempts}: {exc}"
            return _finish(rt, outcome, DeliveryStatus.failed, error)
        delay = backoff(delivery.attempts, rt.settings.send_backoff)
        with transaction(rt.sessions, durable=False) as conn:
            sending.retry_delivery(conn, delivery_id, rt.now() + delay, f"{exc}")
        if not isinstance(exc, TemporaryFailure):
            log.exception("delivery %s: unexpected failure, will retry", delivery_id)
        outcome.record("retried", f"{exc}")
        raise dramatiq.Retry(str(exc), delay=int(delay.total_seconds() * 1000)) from exc
    return _finish(rt, outcome, DeliveryStatus.sent)


def _finish(rt: Runtime, outcome: _Outcome, status: DeliveryStatus, error: str = "") -> str:
    delivery_id = outcome.delivery.id
    record(rt, lambda conn: sending.finish_delivery(conn, delivery_id, status, rt.now(), error))
    outcome.record(status, error)
    return status


@dataclass(frozen=True)
class _Outcome:
    """How one attempt went, counted and logged once: Delivery id, queue, recipient domain."""

    delivery: sending.Claimed
    started: float

    def record(self, result: str, error: str = "") -> None:
        d = self.delivery
        ms = round((time.perf_counter() - self.started) * 1000, 1)
        metrics.DELIVERIES.labels(queue=d.queue, outcome=result).inc()
        domain = d.recipient.rpartition("@")[2].lower()
        fields = {"event": "delivery", "delivery_id": d.id, "queue": d.queue}
        fields |= {"recipient_domain": domain, "template": d.template, "result": result}
        fields |= {"attempt": d.attempts, "ms": ms, **({"error": error[:500]} if error else {})}
        level = logging.INFO if result == "sent" else logging.WARNING
        detail = f": {error}" if error else ""
        log.log(
            level,
            "delivery %s (%s) to %s: %s%s",
            d.id,
            d.queue,
            domain,
            result,
            detail,
            extra=fields,
        )


def declare(
    broker: dramatiq.Broker, rt: Runtime, transport: Transport, renderer: Renderer
) -> list[dramatiq.Actor[Any, None]]:
    """Register the actors on `broker` (outbox.ACTORS, one per queue, and the fan-out), bound to
    this process's runtime, transport and DKIM key (read once, here: a bad key stops the start)."""
    signer = Signer.from_settings(rt.settings)

    def send_delivery(delivery_id: int) -> None:
        deliver(delivery_id, rt, transport, renderer, signer)

    def send_deliveries_bulk(delivery_ids: list[int]) -> None:
        deliver_bulk(delivery_ids, rt, transport, renderer, signer)

    def fan_out_bulletin(bulletin_id: int) -> None:
        fan_out(rt, bulletin_id)

    one: Callable[[int], None] = send_delivery
    actors: list[dramatiq.Actor[Any, None]] = [
        dramatiq.actor(
            one if queue != BULK_QUEUE else send_deliveries_bulk,
            actor_name=ACTORS[queue],
            queue_name=queue,
            priority=PRIORITIES[queue],
            broker=broker,
            max_retries=10_000,  # the Delivery row counts attempts and gives up (send_attempts)
            min_backoff=1_000,
            max_backoff=3_600_000,
        )
        for queue in QUEUES
    ]
    # Before the bulletin's own mails in a worker's queue, so that its writing never waits for them
    writer = dramatiq.actor(
        fan_out_bulletin,
        actor_name=FAN_OUT_BULLETIN,
        queue_name=BULK_QUEUE,
        priority=PRIORITIES[BULK_QUEUE] - 1,
        broker=broker,
        max_retries=100,  # a database hiccup: again, from where the last batch ended
        time_limit=FAN_OUT_TIME_LIMIT,
    )
    return [*actors, writer]
