"""R4.3, step 8 for bulletins: a bulletin's audience written as Deliveries, once per subscriber.

The fan-out (actor `fan_out_bulletin`, on the bulk queue) goes through the product's active
subscribers of the bulletin's kind in id order, `sus_fanout_batch` at a time, each batch one
transaction: the Deliveries and their BulletinRecipient rows together (unique per bulletin and
subscription), so that a batch is written whole or not at all. A run after a crash (of the
publisher or of the worker, at any point) skips who already has a Delivery and writes the rest:
nobody twice, nobody left out. The last batch makes the bulletin published. Mail goes out on the
bulk queue as each batch commits, behind every acknowledgement (outbox.PRIORITIES), handed to
the broker while the next batch is written.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from gateway.core.runtime import Runtime
from gateway.outbound.bulk import write_bulk
from gateway.outbound.outbox import BULK_QUEUE
from gateway.outbound.queries import delete_deliveries
from gateway.storage.db import transaction
from gateway.sus import bulletin_queries, verp
from gateway.sus.addressing import TEMPLATE, mail_for
from gateway.sus.bulletin_queries import BulletinContent

log = logging.getLogger(__name__)
DRAFT_WARM = timedelta(hours=1)  # a draft this recent has the bulk processes started for it


def fan_out(rt: Runtime, bulletin_id: int) -> int:
    """Write what is left of a publishing bulletin's audience; how many Deliveries it wrote."""
    with transaction(rt.sessions, readonly=True) as conn:
        bulletin = bulletin_queries.bulletin_content(conn, bulletin_id)
        waiting = bulletin_queries.pending_of_bulletin(conn, bulletin_id) if bulletin else []
    if bulletin is None or bulletin.state != "publishing":
        return 0
    # Bulk processes claim the mails from the database (workers/puller.py): nothing to hand on.
    # Else an earlier run's mails, written but perhaps never handed to a worker (it was
    # killed), go first, then each batch's as it is written.
    pulled = rt.outbox.pulled
    if pulled:
        rt.outbox.want_pullers()
    else:
        rt.outbox.enqueue((i, BULK_QUEUE) for i in waiting)
    after: int | None = 0
    total = 0
    handed: Callable[[], int] = lambda: 0  # noqa: E731 - the last batch's messages, under way
    while after is not None:
        ids, after = _batch(rt, bulletin, after)
        if not pulled:
            # a batch's messages go to the broker while the next batch is written
            handed()
            handed = rt.outbox.enqueue_beside([(i, BULK_QUEUE) for i in ids])
        total += len(ids)
    handed()
    log.info("bulletin %s: fan-out done, %d deliveries written by this run", bulletin_id, total)
    return total


def _batch(rt: Runtime, bulletin: BulletinContent, after: int) -> tuple[list[int], int | None]:
    """One batch in one transaction: its new Delivery ids, and where the next starts (None: the
    bulletin is published, or no longer publishing).

    The mails are made before the write lock is taken (signing each token and building each
    context is most of a batch's time, and every acknowledgement waits for that lock); under
    it, the page is read again, and only who is still subscribed, as they are now, is written.
    """
    now, keys, settings = rt.now(), rt.keys, rt.settings
    product, kind, limit = bulletin.product_id, bulletin.kind, settings.sus_fanout_batch
    with transaction(rt.sessions, readonly=True) as conn:
        seen = bulletin_queries.audience_page(conn, product, kind, after, limit)
    made = {s: mail_for(bulletin, s, settings, keys) for s in seen.subscribers}
    with transaction(rt.sessions) as conn:  # durable: these are mails promised
        if not bulletin_queries.take_bulletin(conn, bulletin.id, now):
            return [], None
        page = bulletin_queries.audience_page(conn, product, kind, after, limit)
        if page.last is None:
            bulletin_queries.mark_published(conn, bulletin.id)
            return [], None
        done = bulletin_queries.written(conn, bulletin.id, after, page.last)
        fresh = [s for s in page.subscribers if s.subscription_id not in done]
        ids = write_bulk(
            conn,
            template=TEMPLATE,
            mails=[made.get(s) or mail_for(bulletin, s, settings, keys) for s in fresh],
            now=now,
            return_path=lambda delivery_id: verp.return_path(delivery_id, keys, settings.domain),
            enqueued=not rt.outbox.pulled,
        )
        pairs = [(s.subscription_id, d) for s, d in zip(fresh, ids, strict=True)]
        kept = bulletin_queries.add_recipients(conn, bulletin.id, pairs, now)
        # Not reached while take_bulletin holds the row; if it ever is, the unique pair wins and
        # this batch's extra Delivery is never sent.
        delete_deliveries(conn, [d for d in ids if d not in kept])
    return [d for d in ids if d in kept], page.last


def resume_stalled(rt: Runtime) -> list[int]:
    """The sweep's part: bulletins left publishing with no fan-out for `stale_sending_after`
    (a lost broker message, a killed worker), or handed to none yet (published from a command
    without a broker), are handed to a worker again; and where bulk processes send, they are
    started once a bulletin is drafted."""
    now = rt.now()
    before = now - timedelta(seconds=rt.settings.stale_sending_after)
    with transaction(rt.sessions, durable=False) as conn:
        ids = bulletin_queries.stalled_bulletins(conn, now, before)
    if rt.outbox.pulled and not rt.outbox.pullers_wanted:
        # A fresh draft is a bulletin about to go out: the bulk processes are started now, so
        # that their start (a second or two of imports) is not the first seconds of its sending.
        # A draft left for longer than DRAFT_WARM starts them no more: it may never go out.
        with transaction(rt.sessions, readonly=True) as conn:
            if bulletin_queries.any_to_send(conn, now - DRAFT_WARM):
                rt.outbox.want_pullers()
    for bulletin_id in ids:
        log.info("bulletin %s: fan-out handed to a worker", bulletin_id)
        rt.outbox.fan_out(bulletin_id)
    return ids
