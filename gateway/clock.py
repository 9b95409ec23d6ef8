"""The clock: take the Deadlines that are due and turn each into its consequence, exactly once.

The consequences are the rooms' own: the service levels' warnings, breaches, not-updated alerts,
Director escalations and daily mails (sla/deadlines.py); SecureHands acceptances, queries, top-up
and expiry reminders (securehands/deadlines.py); on every tick also what the rooms watch without
a Deadline (`LOOKS`: the Support Update Service's bulletins refused at send time and suspended
addresses that took a mail since, sus/scores.py), the quarterly account reviews
(reports/deadlines.py). Each is handled in the transaction that writes
its mails and moves it on; on PostgreSQL the rows are taken FOR UPDATE
SKIP LOCKED, so several clocks may run side by side and none acts twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Connection

from gateway.core.runtime import Runtime
from gateway.observe import metrics
from gateway.reports import deadlines as report_deadlines
from gateway.securehands import deadlines as securehands_deadlines
from gateway.sla import deadlines
from gateway.sla.queries import due_deadlines
from gateway.storage.db import transaction
from gateway.sus import scores

log = logging.getLogger(__name__)
BATCH = 500  # Deadlines per transaction
HANDLERS: dict[str, deadlines.Handler] = {  # kind -> its consequence
    **deadlines.HANDLERS,
    **securehands_deadlines.HANDLERS,
    **report_deadlines.HANDLERS,
}
Look = Callable[[Connection, Runtime, datetime], deadlines.Deliveries]
LOOKS: tuple[Look, ...] = (scores.look,)  # R4.4: refusals at send time, resumptions


def tick(rt: Runtime, limit: int = BATCH) -> int:
    """Handle what is due now; returns how many Deadlines were handled."""
    now = rt.now()
    with transaction(rt.sessions) as conn:
        rows = due_deadlines(conn, now, limit)
        mails: deadlines.Deliveries = []
        for row in rows:
            mails += HANDLERS[row.kind](conn, rt, row, now)
            if row.next_at is not None:
                metrics.CLOCK_LAG.observe(max(0.0, (now - row.next_at).total_seconds()))
    rt.outbox.enqueue(mails)
    if rows:
        log.info("clock: %d due, %d mails", len(rows), len(mails))
    for look in LOOKS:  # each in a transaction of its own: a failing one holds up no Deadline
        with transaction(rt.sessions) as conn:
            found = look(conn, rt, now)
        rt.outbox.enqueue(found)
    return len(rows)


def prepare(rt: Runtime) -> None:
    """Make sure the daily jobs are scheduled (once, whichever clock starts first)."""
    with transaction(rt.sessions) as conn:
        deadlines.prepare(conn, rt, rt.now())
        report_deadlines.prepare(conn, rt, rt.now())
