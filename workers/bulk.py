"""Step 10 for bulletins: a chunk of bulk Delivery ids sent over the thread's kept-open
connections, each marked sent before the relay has its end, so that none goes out twice (R4.3);
the mails go side by side, one a connection, and a round of them is marked in one step
(workers/transport.py, `send_each`).

Failures are the same as for any mail: 4xx and lost connections are tried again with backoff
(the sweep enqueues the Delivery when its time comes), 5xx fail it for good.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TypeVar

from sqlalchemy import Connection

from gateway.core.runtime import Runtime
from gateway.observe import committers, metrics
from gateway.outbound import sending
from gateway.storage import unwaited
from gateway.storage.db import transaction
from workers.composer import compose_bytes, envelope_sender
from workers.images import inline_images
from workers.render import Renderer, RenderError
from workers.signing import Signer
from workers.transport import (
    EndUnanswered,
    Outgoing,
    PermanentFailure,
    Sent,
    TemporaryFailure,
    Transport,
)

log = logging.getLogger(__name__)
MAX_BACKOFF = timedelta(hours=1)
T = TypeVar("T")


def backoff(attempts: int, first: float) -> timedelta:
    """first, 2×first, 4×first … up to an hour, with jitter so that retries do not herd."""
    base = min(timedelta(seconds=first * 2 ** max(0, attempts - 1)), MAX_BACKOFF)
    return base * random.uniform(0.8, 1.2)


def message_bytes(
    delivery: sending.Claimed, rt: Runtime, renderer: Renderer, signer: Signer | None
) -> bytes:
    """The Delivery rendered, composed with its files and charts, and signed when a key is set
    (R6.7; RFC 8058 §4: a bulletin's List-* fields are signed too)."""
    rendered = renderer.render(
        delivery.template, delivery.audience, delivery.language, delivery.context
    )
    files: list[sending.File] = []
    if delivery.context.get("files"):
        with transaction(rt.sessions, readonly=True) as conn:
            files = sending.files(conn, [int(i) for i in delivery.context["files"]])
    inline = inline_images(delivery.context.get("images") or [])
    data = compose_bytes(delivery, rendered, rt.settings, files, inline)
    return data if signer is None else signer.sign(data)


def deliver_bulk(
    delivery_ids: list[int],
    rt: Runtime,
    transport: Transport,
    renderer: Renderer,
    signer: Signer | None = None,
) -> list[str]:
    """Each of the ids still pending, sent at most once; their outcomes (`skipped`: another
    worker had it, or it was cancelled). The chunk's mails are composed first, then sent over
    the thread's connections side by side (`Transport.send_each`), each round of them marked
    sent in one step."""
    due = _read(rt, lambda conn: sending.pending_deliveries(conn, list(delivery_ids), rt.now()))
    outcomes: dict[int, str] = {}
    ready: list[tuple[sending.Claimed, Outgoing]] = []
    for delivery in due:
        try:
            data = message_bytes(delivery, rt, renderer, signer)
            sender = envelope_sender(delivery, rt.settings)
        except Exception as exc:  # this mail's own: the rest of the chunk goes on
            error = f"{type(exc).__name__}: {exc}"
            permanent = isinstance(exc, PermanentFailure | RenderError | ValueError)
            if not permanent:
                log.error("delivery %s: cannot be composed, will retry", delivery.id, exc_info=exc)
            outcomes[delivery.id] = _refused(rt, delivery, False, error, permanent=permanent)
            continue
        ready.append((delivery, Outgoing(data, sender, [delivery.recipient])))
    mark = _Mark(rt, [delivery.id for delivery, _ in ready])
    results = transport.send_each([outgoing for _, outgoing in ready], mark)
    for n, ((delivery, _), result) in enumerate(zip(ready, results, strict=True)):
        outcomes[delivery.id] = _outcome(rt, delivery, n in mark.made, result)
    ordered = [outcomes[delivery.id] for delivery in due]
    for outcome in ordered:
        metrics.DELIVERIES.labels(queue="bulk", outcome=outcome).inc()
    return ordered


@dataclass
class _Mark:
    """The marks (pending -> sent) of a chunk's Deliveries, a round of them in one step when
    the transport calls it with their positions; `made` holds the positions marked, so that a
    failure after a mark is known to follow it."""

    rt: Runtime
    delivery_ids: list[int]
    made: set[int] = field(default_factory=set)

    def __call__(self, positions: list[int]) -> set[int]:
        rt, ids = self.rt, [self.delivery_ids[n] for n in positions]
        marked = record(rt, lambda conn: sending.mark_sent(conn, ids, rt.now()))
        done = {n for n, delivery_id in zip(positions, ids, strict=True) if delivery_id in marked}
        self.made |= done
        return done


def _outcome(rt: Runtime, delivery: sending.Claimed, marked: bool, result: Sent) -> str:
    if result is True:
        return "sent"
    if result is False:
        return "skipped"
    error = f"{type(result).__name__}: {result}"
    if marked and isinstance(result, EndUnanswered):  # the relay may have it: not again
        log.warning("delivery %s: no answer to its end; counted sent: %s", delivery.id, error)
        with transaction(rt.sessions, durable=False) as conn:
            sending.note_error(conn, delivery.id, error)
        return "sent"
    if isinstance(result, PermanentFailure):
        return _refused(rt, delivery, marked, error, permanent=True)
    if not isinstance(result, TemporaryFailure):  # anything unforeseen: try again later
        log.error("delivery %s: unexpected failure, will retry", delivery.id, exc_info=result)
    return _refused(rt, delivery, marked, error, permanent=False)


def _refused(
    rt: Runtime, delivery: sending.Claimed, marked: bool, error: str, *, permanent: bool
) -> str:
    attempts = delivery.attempts + 1
    give_up = permanent or attempts >= rt.settings.send_attempts
    retry_at = None if give_up else rt.now() + backoff(attempts, rt.settings.send_backoff)
    if give_up and not permanent:
        error = f"gave up after {attempts}: {error}"
    with transaction(rt.sessions, durable=False) as conn:
        sending.refused(conn, delivery.id, marked=marked, error=error, retry_at=retry_at)
    log.warning("delivery %s %s: %s", delivery.id, "failed" if give_up else "deferred", error)
    return "failed" if give_up else "pending"


def _read(rt: Runtime, step: Callable[[Connection], T]) -> T:
    """One statement that only reads: on PostgreSQL in one round trip (storage/unwaited.py)."""
    if unwaited.applies(rt.sessions):
        return unwaited.run(rt.sessions, step, reads=True)
    with transaction(rt.sessions, readonly=True) as conn:
        return step(conn)


def record(rt: Runtime, step: Callable[[Connection], T]) -> T:
    """A Delivery's bookkeeping (one statement), not waiting for the disk: a mark lost to a
    power cut only makes a mail go again. On SQLite in one transaction with the marks of the
    other worker threads made meanwhile (group commit, storage/committer.py); on PostgreSQL,
    which takes many writers at once, committed by itself in one round trip
    (storage/unwaited.py)."""
    if unwaited.applies(rt.sessions):
        return unwaited.run(rt.sessions, step)
    return committers.bookkeeping(rt.sessions).write(step)
