"""Step 10: the Dramatiq actors `send_delivery*`: a Delivery id in, idempotent, 4xx retried."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from datetime import timedelta

import dramatiq

from gateway.core.runtime import Runtime
from gateway.core.vocabulary import DeliveryStatus
from gateway.outbound import sending
from gateway.outbound.outbox import ACTORS, PRIORITIES, QUEUES
from gateway.storage.db import transaction
from workers.images import inline_images
from workers.mailer import PermanentFailure, TemporaryFailure, Transport, compose
from workers.render import Renderer, RenderError

log = logging.getLogger(__name__)
MAX_BACKOFF = timedelta(hours=1)


def deliver(delivery_id: int, rt: Runtime, transport: Transport, renderer: Renderer) -> str:
    """Claim, render, compose, send, record. Returns the Delivery's new status, or `skipped`."""
    with transaction(rt.sessions, durable=False) as conn:
        delivery = sending.claim_delivery(conn, delivery_id, rt.now())
    if delivery is None:
        return "skipped"  # already sent, failed, or being sent by someone else
    try:
        rendered = renderer.render(
            delivery.template, delivery.audience, delivery.language, delivery.context
        )
        files: list[sending.File] = []
        if delivery.context.get("files"):
            with transaction(rt.sessions, readonly=True) as conn:
                files = sending.files(conn, [int(i) for i in delivery.context["files"]])
        inline = inline_images(delivery.context.get("images") or [])
        message = compose(delivery, rendered, rt.settings, files, inline)
        transport.send(message, rt.settings.gateway_address, [delivery.recipient])
    except (PermanentFailure, RenderError, ValueError) as exc:
        return _finish(rt, delivery_id, DeliveryStatus.failed, f"{type(exc).__name__}: {exc}")
    except Exception as exc:  # TemporaryFailure, or anything unforeseen: try again later
        if delivery.attempts >= rt.settings.send_attempts:
            return _finish(
                rt, delivery_id, DeliveryStatus.failed, f"gave up after {delivery.attempts}: {exc}"
            )
        delay = _backoff(delivery.attempts, rt.settings.send_backoff)
        with transaction(rt.sessions, durable=False) as conn:
            sending.retry_delivery(conn, delivery_id, rt.now() + delay, f"{exc}")
        if not isinstance(exc, TemporaryFailure):
            log.exception("delivery %s: unexpected failure, will retry", delivery_id)
        raise dramatiq.Retry(str(exc), delay=int(delay.total_seconds() * 1000)) from exc
    return _finish(rt, delivery_id, DeliveryStatus.sent)


def _finish(rt: Runtime, delivery_id: int, status: DeliveryStatus, error: str = "") -> str:
    with transaction(rt.sessions, durable=False) as conn:
        sending.finish_delivery(conn, delivery_id, status, rt.now(), error)
    if error:
        log.warning("delivery %s %s: %s", delivery_id, status, error)
    return status


def _backoff(attempts: int, first: float) -> timedelta:
    """first, 2×first, 4×first … up to an hour, with jitter so that retries do not herd."""
    base = min(timedelta(seconds=first * 2 ** max(0, attempts - 1)), MAX_BACKOFF)
    return base * random.uniform(0.8, 1.2)


def declare(
    broker: dramatiq.Broker, rt: Runtime, transport: Transport, renderer: Renderer
) -> list[dramatiq.Actor[[int], None]]:
    """Register the sending actors on `broker` (one per queue, outbox.ACTORS), bound to this
    process's runtime and transport."""

    def send_delivery(delivery_id: int) -> None:
        deliver(delivery_id, rt, transport, renderer)

    fn: Callable[[int], None] = send_delivery
    return [
        dramatiq.actor(
            fn,
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
