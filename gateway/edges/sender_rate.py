"""Step 1, the SMTP edge's sender rate (R6.1): mails admitted per envelope sender and window."""

from __future__ import annotations

import logging
import math
from datetime import datetime, timedelta

from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from gateway.core.runtime import Runtime
from gateway.observe import committers
from gateway.storage.limits import count_sender, forget_senders

log = logging.getLogger(__name__)


class SenderRate:
    """R6.1: mails admitted per envelope sender and window, counted in the database, so that
    every listener of the gateway admits the same `limit` in all (storage/limits.py)."""

    PRUNE_EVERY = 1000  # admissions between two clean-ups of ended windows

    def __init__(self, rt: Runtime, limit: int, window: float) -> None:
        self.rt, self.limit, self.window = rt, limit, timedelta(seconds=window)
        self.admitted = 0

    def admit(self, sender: str) -> int:
        """0 if `sender` may send now (and it is counted), else the seconds to wait."""
        now = self.rt.now()
        self.admitted += 1
        prune = self.admitted % self.PRUNE_EVERY == 0

        def count(conn: Connection) -> datetime | None:
            if prune:
                forget_senders(conn, now - self.window)
            return count_sender(conn, sender, now, self.window, self.limit)

        try:
            # with the other counts and Delivery marks made meanwhile, not waiting for the disk
            started = committers.bookkeeping(self.rt.sessions).write(count)
        except SQLAlchemyError as exc:  # the limit is a guard, not a gate: storage decides
            log.warning("sender rate of %s not counted: %s", sender, exc)
            return 0
        if started is None:
            return 0
        return max(1, math.ceil((started + self.window - now).total_seconds()))
