"""The gateway's two group committers (storage/committer.py), each telling its metric the size
of the groups it commits: intake's durable one, and the bookkeeping's that waits for no disk."""

from __future__ import annotations

from gateway.core.runtime import Sessions
from gateway.observe import metrics
from gateway.storage.committer import Committer

_INTAKE = metrics.COMMIT_GROUP.labels(work="intake")
_BOOKKEEPING = metrics.COMMIT_GROUP.labels(work="bookkeeping")


def intake(sessions: Sessions) -> Committer:
    """Mails stored: each waits for its group's COMMIT and fsync before its 250."""
    return Committer.of(sessions, observe=_INTAKE.observe)


def bookkeeping(sessions: Sessions) -> Committer:
    """Sender counts and Delivery marks (on SQLite; on PostgreSQL a mark commits by itself,
    storage/unwaited.py): a group lost to a power cut only makes a mail go again or a sender be
    counted short."""
    return Committer.of(sessions, durable=False, observe=_BOOKKEEPING.observe)
