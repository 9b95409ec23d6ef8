"""The clock: take the Deadlines that are due and turn each into its consequence, exactly once.

The consequences are the rooms' own: the service levels' warnings, breaches, not-updated alerts,
Director escalations and daily mails (sla/deadlines.py), the quarterly account reviews
(reports/deadlines.py). Each Deadline is handled in the
transaction that writes its mails and moves it on; on PostgreSQL the rows are taken FOR UPDATE
SKIP LOCKED, so several clocks may run side by side and none acts twice.
"""

from __future__ import annotations

import logging

from gateway.core.runtime import Runtime
from gateway.reports import deadlines as report_deadlines
from gateway.sla import deadlines
from gateway.sla.queries import due_deadlines
from gateway.storage.db import transaction

log = logging.getLogger(__name__)
BATCH = 500  # Deadlines per transaction
HANDLERS: dict[str, deadlines.Handler] = {  # kind -> its consequence
    **deadlines.HANDLERS,
    **report_deadlines.HANDLERS,
}


def tick(rt: Runtime, limit: int = BATCH) -> int:
    """Handle what is due now; returns how many Deadlines were handled."""
    now = rt.now()
    with transaction(rt.sessions) as conn:
        rows = due_deadlines(conn, now, limit)
        mails: deadlines.Deliveries = []
        for row in rows:
            mails += HANDLERS[row.kind](conn, rt, row, now)
    rt.outbox.enqueue(mails)
    if rows:
        log.info("clock: %d due, %d mails", len(rows), len(mails))
    return len(rows)


def prepare(rt: Runtime) -> None:
    """Make sure the daily jobs are scheduled (once, whichever clock starts first)."""
    with transaction(rt.sessions) as conn:
        deadlines.prepare(conn, rt, rt.now())
        report_deadlines.prepare(conn, rt, rt.now())
