"""Step 10 for bulletins in a process of its own (`gateway bulk`): bulk Deliveries claimed
straight from the database, CLAIM at a time (gateway/outbound/pulling.py `claim_bulk`), and sent
as a worker thread sends a bulk message (workers/bulk.py), each marked sent before its end.

On the embedded default the broker lives in the gateway's process, and a bulletin's sending
would share that process's interpreter lock with everything else; `gateway run` starts
GATEWAY_BULK_PROCESSES of these beside itself, so that bulletin mail has cores of its own. A
puller that is killed leaves what it claimed and did not send pending; the gateway's sweep
enqueues it again after GATEWAY_REQUEUE_AFTER (marked before its end, none goes twice).
"""

from __future__ import annotations

import logging
import threading

from gateway.core.runtime import Runtime
from gateway.outbound import pulling
from gateway.storage.db import transaction
from workers.bulk import deliver_bulk
from workers.render import Renderer
from workers.signing import Signer
from workers.transport import Transport

log = logging.getLogger(__name__)
IDLE_POLL = 0.2  # seconds an idle puller waits before it looks for mail again
# Deliveries a thread claims at once. Each claim takes the embedded database's write lock, which
# the fan-out's batches hold in turn: fifty, against ten, sent a 10,000 fan-out 20-40 % faster
# at a fifth less CPU a mail. The acknowledgements never wait for these threads.
CLAIM = 50


class Puller:
    """`threads` threads, each claiming a chunk, sending it, and claiming the next, until
    `stopping` is set (a chunk under way is finished first)."""

    def __init__(
        self,
        rt: Runtime,
        transport: Transport,
        renderer: Renderer,
        signer: Signer | None,
        threads: int,
        stopping: threading.Event,
    ) -> None:
        self.rt, self.transport, self.renderer, self.signer = rt, transport, renderer, signer
        self.stopping = stopping
        self.threads = [
            threading.Thread(target=self._pull, name=f"bulk-puller-{n}", daemon=True)
            for n in range(threads)
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def join(self, timeout: float) -> None:
        for thread in self.threads:
            thread.join(timeout)

    def _pull(self) -> None:
        after = 0  # where this thread's next claim starts: the ids below it were claimed
        idle = True
        while not self.stopping.is_set():
            try:
                # an idle puller only reads (no write lock) until there is mail to claim
                ids, after = self._claim(after) if not idle or self._waiting() else ([], after)
                idle = not ids
                if idle:
                    self.stopping.wait(IDLE_POLL)
                    continue
                deliver_bulk(ids, self.rt, self.transport, self.renderer, self.signer)
            except Exception:  # an edge: what it claimed goes again after requeue_after
                log.exception("bulk puller: a chunk failed; going on")
                idle = True
                self.stopping.wait(IDLE_POLL)

    def _waiting(self) -> bool:
        with transaction(self.rt.sessions, readonly=True) as conn:
            return pulling.any_unclaimed_bulk(conn, self.rt.now())

    def _claim(self, after: int) -> tuple[list[int], int]:
        """A chunk claimed above `after`, or, when there is none there, from the lowest
        unclaimed one (a new bulletin, or a retry come due); and where the next claim starts."""
        rt = self.rt
        with transaction(rt.sessions, durable=False) as conn:  # a claim lost repeats nothing
            ids = pulling.claim_bulk(conn, rt.now(), after, CLAIM)
            if not ids:
                first = pulling.first_unclaimed_bulk(conn, rt.now())
                if first is not None:
                    ids = pulling.claim_bulk(conn, rt.now(), first - 1, CLAIM)
        return ids, (ids[-1] if ids else after)
