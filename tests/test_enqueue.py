"""Handing a fan-out batch's messages to the broker from several threads (`enqueue_beside`):
every Delivery id reaches its queue once, in chunks, on RabbitMQ and on the in-process broker."""

from __future__ import annotations

import time

from dramatiq import Broker
from dramatiq.brokers.stub import StubBroker

from gateway.outbound.outbox import BULK_CHUNK, BULK_QUEUE, ENQUEUERS, Outbox, make_broker


def drained(broker: Broker, want: int, timeout: float = 30.0) -> list[list[int]]:
    """The bulk queue's messages' id lists, until `want` ids came (or `timeout`)."""
    chunks: list[list[int]] = []
    consumer = broker.consume(BULK_QUEUE, prefetch=100, timeout=200)
    deadline = time.monotonic() + timeout
    try:
        while sum(map(len, chunks)) < want and time.monotonic() < deadline:
            message = next(consumer)
            if message is not None:
                chunks.append(list(message.args[0]))
                consumer.ack(message)
    finally:
        consumer.close()
    return chunks


def test_a_batch_handed_to_rabbitmq_from_several_threads_arrives_once_in_chunks(
    rabbitmq_url: str,
) -> None:
    # Given a batch of bulk ids larger than one thread's share
    broker = make_broker(rabbitmq_url)
    outbox = Outbox(broker)
    ids = list(range(1, ENQUEUERS * BULK_CHUNK * 3 + 6))
    try:
        # When it is handed over beside the caller, and waited for
        wait = outbox.enqueue_beside([(i, BULK_QUEUE) for i in ids])
        sent = wait()
        chunks = drained(broker, len(ids))
    finally:
        outbox.close()
    # Then each id is in the queue once, no message holding more than a chunk
    assert sent == len(ids)
    assert sorted(i for chunk in chunks for i in chunk) == ids
    assert max(map(len, chunks)) <= BULK_CHUNK


def test_an_in_process_broker_takes_the_batch_at_once() -> None:
    broker = StubBroker()
    broker.declare_queue(BULK_QUEUE)
    outbox = Outbox(broker)
    ids = range(1, 2 * BULK_CHUNK + 4)
    wait = outbox.enqueue_beside([(i, BULK_QUEUE) for i in ids])
    # already in the queue before anyone waits: two full chunks and the rest
    assert broker.queues[BULK_QUEUE].qsize() == 3
    assert wait() == len(ids)
    outbox.close()
