"""Steps 9 and 11, the queue contract: actors and queues, the broker, Delivery ids enqueued after
the commit, and the sweep.

The database is the truth and the broker only carries ids: a lost message delays a mail (the
sweep enqueues it again) and never loses it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import dramatiq
from dramatiq.brokers.stub import StubBroker

from gateway.core.runtime import Sessions
from gateway.outbound.pulling import any_unclaimed_bulk
from gateway.outbound.sending import release_stale_sending, take_due_deliveries
from gateway.storage.db import transaction

log = logging.getLogger(__name__)

SEND_DELIVERY = "send_delivery"  # actor: render, compose and send one Delivery
MAIL_QUEUE = "mail"  # to customers (acknowledgements, answers, notices) and alerts to the SOC
SOC_QUEUE = "soc"  # the SOC's copy of each new SR and customer reply
BULK_QUEUE = "bulk"  # bulletins, so that a large one never delays an acknowledgement
QUEUES = (MAIL_QUEUE, SOC_QUEUE, BULK_QUEUE)
# One actor per queue, all sending a Delivery; a worker with messages of several waiting takes
# the lowest priority first: when mail comes in faster than it can all go out, the customer's
# acknowledgement and the SOC's alerts go before the SOC's copies, and bulletins go last.
ACTORS = {
    MAIL_QUEUE: SEND_DELIVERY,
    SOC_QUEUE: f"{SEND_DELIVERY}_soc",
    BULK_QUEUE: "send_deliveries_bulk",  # takes a list of ids: BULK_CHUNK a message
}
PRIORITIES = {MAIL_QUEUE: 0, SOC_QUEUE: 10, BULK_QUEUE: 20}
# Bulletin mail goes BULK_CHUNK Delivery ids to a message: one broker round trip and one read
# for several mails, and a worker thread busy for that many at a time: an acknowledgement waits
# at most for a worker to finish them, never for the bulletin. PostgreSQL + RabbitMQ, 10,000
# subscribers: 25 took a third less of the workers' CPU a mail than 10, with acknowledgements
# during a 50,000 fan-out at p99 398 ms against 371; 50 gained no more and made that p99 1.04 s.
BULK_CHUNK = 25
# Threads that hand one fan-out batch's messages to the broker side by side (`enqueue_beside`):
# RabbitMQ confirms each message (confirm_delivery), and 1,000 bulk messages took 0.9 s from one
# thread, 0.46 s from four, here.
ENQUEUERS = 4
FAN_OUT_BULLETIN = "fan_out_bulletin"  # actor on the bulk queue: a bulletin's audience written


def make_broker(url: str) -> dramatiq.Broker:
    """In-process when `url` is empty, else RabbitMQ (amqp://) or Redis (redis://)."""
    broker: dramatiq.Broker
    if not url:
        broker = StubBroker()
    elif url.startswith(("amqp://", "amqps://")):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        broker = RabbitmqBroker(url=url, confirm_delivery=True)
    elif url.startswith(("redis://", "rediss://", "unix://")):
        from dramatiq.brokers.redis import RedisBroker

        broker = RedisBroker(url=url)
    else:
        raise ValueError(f"GATEWAY_BROKER_URL must be empty, amqp://… or redis://…, not {url!r}")
    for queue in QUEUES:
        broker.declare_queue(queue)
    return broker


def in_process(broker: dramatiq.Broker) -> bool:
    return isinstance(broker, StubBroker)


class Outbox:
    """Hands Delivery ids to the broker. Failures are logged, never raised: the sweep retries."""

    def __init__(self, broker: dramatiq.Broker) -> None:
        self.broker = broker
        # Bulk processes (`gateway bulk`, workers/puller.py) claim bulletin mail from the
        # database: a fan-out leaves its Deliveries to them, unenqueued (`pull_with`)
        self.pulled = False
        self.pullers_wanted = False  # started once: they are started again when they end
        self._start_pullers: Callable[[], None] | None = None
        self._enqueuers: ThreadPoolExecutor | None = None
        self._enqueuers_lock = threading.Lock()

    def pull_with(self, start: Callable[[], None]) -> None:
        """Bulletin mail is left for bulk processes, which `start` starts (at once if they
        run already); it is called when there is some, or a bulletin about to go out, so a
        gateway with no bulletin to send runs none."""
        self.pulled, self._start_pullers = True, start

    def want_pullers(self) -> None:
        """Start the bulk processes if they are not running; logged, never raised (the sweep
        asks again while mail waits for them)."""
        if self._start_pullers is None:
            return
        try:
            self._start_pullers()
        except Exception:
            log.warning("the bulk processes could not be started; trying again", exc_info=True)
            return
        self.pullers_wanted = True

    def enqueue(self, deliveries: Iterable[tuple[int, str]]) -> int:
        """Hand Delivery ids to their queues (bulk ones BULK_CHUNK a message); how many went."""
        sent = 0
        for queue, args, count in _messages(deliveries):
            message = dramatiq.Message(
                queue_name=queue,
                actor_name=ACTORS.get(queue, SEND_DELIVERY),
                args=args,
                kwargs={},
                options={},
            )
            try:
                self.broker.enqueue(message)
                sent += count
            except Exception:  # broker down: the Delivery stays pending for the sweep
                log.warning("could not enqueue delivery %s; the sweep will", args, exc_info=True)
                break
        return sent

    def enqueue_beside(self, deliveries: list[tuple[int, str]]) -> Callable[[], int]:
        """`enqueue` from ENQUEUERS threads at once while the caller goes on; returns what waits
        for them and says how many went. An in-process broker takes them here and now."""
        if in_process(self.broker):
            sent = self.enqueue(deliveries)
            return lambda: sent
        with self._enqueuers_lock:  # threads kept: each keeps its own broker connection
            if self._enqueuers is None:
                self._enqueuers = ThreadPoolExecutor(ENQUEUERS, thread_name_prefix="enqueue")
            pool = self._enqueuers
        step = -(-len(deliveries) // (ENQUEUERS * BULK_CHUNK)) * BULK_CHUNK or BULK_CHUNK
        parts = [deliveries[k : k + step] for k in range(0, len(deliveries), step)]
        futures = [pool.submit(self.enqueue, part) for part in parts]
        return lambda: sum(future.result() for future in futures)

    def close(self) -> None:
        """Stop the enqueuing threads (their broker connections close with the broker), then
        the broker."""
        with self._enqueuers_lock:
            pool, self._enqueuers = self._enqueuers, None
        if pool is not None:
            pool.shutdown(wait=True)
        self.broker.close()

    def fan_out(self, bulletin_id: int) -> bool:
        """Hand a bulletin's fan-out to a worker; False if the broker would not take it (the
        sweep takes up a bulletin left publishing)."""
        message = dramatiq.Message(
            queue_name=BULK_QUEUE,
            actor_name=FAN_OUT_BULLETIN,
            args=(bulletin_id,),
            kwargs={},
            options={},
        )
        try:
            self.broker.enqueue(message)
        except Exception:
            log.warning("could not enqueue the fan-out of bulletin %s", bulletin_id, exc_info=True)
            return False
        return True


def _messages(deliveries: Iterable[tuple[int, str]]) -> Iterable[tuple[str, tuple[Any, ...], int]]:
    """(queue, args, how many Deliveries) of each message: one id each, bulk ones in chunks."""
    bulk: list[int] = []
    for delivery_id, queue in deliveries:
        if queue != BULK_QUEUE:
            yield queue, (delivery_id,), 1
            continue
        bulk.append(delivery_id)
        if len(bulk) == BULK_CHUNK:
            yield BULK_QUEUE, (bulk,), len(bulk)
            bulk = []
    if bulk:
        yield BULK_QUEUE, (bulk,), len(bulk)


def sweep(
    sessions: Sessions,
    outbox: Outbox,
    now: datetime,
    *,
    requeue_after: float,
    stale_after: float,
    lost_before: datetime | None = None,
) -> int:
    """Enqueue Deliveries left pending, and release those a lost worker left sending.

    A pending Delivery is enqueued again when it was enqueued more than `requeue_after` seconds
    ago, or before `lost_before`: an in-process broker's start, whose queue began empty."""
    enqueued_before = now - timedelta(seconds=requeue_after)
    if lost_before is not None:
        enqueued_before = max(enqueued_before, lost_before)
    with transaction(sessions, durable=False) as conn:  # marks only: losing one repeats work
        released = release_stale_sending(conn, now - timedelta(seconds=stale_after))
        due = take_due_deliveries(conn, now, enqueued_before, leave_new_bulk=outbox.pulled)
    if outbox.pulled and not outbox.pullers_wanted:
        # mail left by a fan-out of a process killed before its pullers ran
        with transaction(sessions, readonly=True) as conn:
            unclaimed = any_unclaimed_bulk(conn, now)
        if unclaimed:
            outbox.want_pullers()
    if released:
        log.warning("released %d deliveries left in sending", released)
    return outbox.enqueue(due)
