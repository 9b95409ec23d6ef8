"""Group commit: the write steps of mails that arrive together share one transaction and one fsync.

A mail's step runs in a savepoint of its own, so that one mail's failure is its own: the others
of the group commit. A step's caller gets its result only after the group's COMMIT, which is when
it may answer 250 (R6.2); if the COMMIT fails, every step of the group gets the error, and no
mail of it was acknowledged. Postfix's cleanup and PostgreSQL's commit_delay do the same. No step
waits for others to join it: a group is whatever came while the previous group was committing,
so at a low rate each mail commits alone, as fast as before.

Intake's transactions are durable (fsync); the workers' bookkeeping of Deliveries (claimed, sent)
and the sender counts go through a committer of their own that does not wait for the disk
(storage/db.py `durable`) and takes no savepoints: its steps are single statements that fail
rarely, and a group in which one fails is run again a step a transaction.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy import Connection, Engine

from gateway.core.runtime import Sessions
from gateway.storage.db import transaction

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_GROUP = 64  # steps in one transaction: a bound on how long one group holds the writer
IDLE = 30.0  # seconds without a step after which a committer's thread ends (the next one starts)


@dataclass
class _Step(Generic[T]):
    run: Callable[[Connection], T]
    done: threading.Event = field(default_factory=threading.Event)
    result: T | None = None
    error: BaseException | None = None


class Committer:
    """One thread per database that runs the steps it is given in groups (`write`)."""

    _running: ClassVar[dict[tuple[int, bool], Committer]] = {}
    _guard = threading.Lock()

    def __init__(
        self, sessions: Sessions, durable: bool, observe: Callable[[int], None] | None
    ) -> None:
        self.sessions, self.durable, self.observe = sessions, durable, observe
        self.waiting: deque[_Step[Any]] = deque()
        self.ready = threading.Condition()
        self.closed = False
        self.pid = os.getpid()  # a forked child inherits the registry, not the thread
        name = "group-commit" if durable else "group-commit-light"
        self.thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self.thread.start()

    @classmethod
    def of(
        cls,
        sessions: Sessions,
        *,
        durable: bool = True,
        observe: Callable[[int], None] | None = None,
    ) -> Committer:
        """The committer of the sessions' engine (durable or not), started on first use;
        `observe` is told the size of each group it commits."""
        engine: Engine = sessions.kw["bind"]
        key = (id(engine), durable)
        with cls._guard:
            committer = cls._running.get(key)
            if (
                committer is None
                or committer.sessions.kw["bind"] is not engine
                or committer.pid != os.getpid()
            ):
                committer = cls._running[key] = cls(sessions, durable, observe)
            return committer

    def write(self, run: Callable[[Connection], T]) -> T:
        """Run `run(conn)` in the next group's transaction; its result once the group committed.

        Raises what `run` raised (its savepoint rolled back, the group unharmed), or what made
        the group's transaction fail.
        """
        if threading.current_thread() is self.thread:
            raise RuntimeError("a step of a group cannot wait for another group")
        step: _Step[T] = _Step(run)
        with self.ready:
            if self.closed:  # it ended for idleness a moment ago: its successor takes the step
                again = Committer.of(self.sessions, durable=self.durable, observe=self.observe)
                return again.write(run)
            self.waiting.append(step)
            self.ready.notify()
        step.done.wait()
        if step.error is not None:
            raise step.error
        return step.result  # type: ignore[return-value]

    def _serve(self) -> None:
        while True:
            with self.ready:
                while not self.waiting:
                    if not self.ready.wait(IDLE) and not self.waiting:
                        self._close()
                        return
                group = [self.waiting.popleft() for _ in range(min(MAX_GROUP, len(self.waiting)))]
            self._commit(group)

    def _close(self) -> None:
        """Called holding `ready`: no step is waiting, and none will be given to this one."""
        self.closed = True
        with self._guard:
            key = (id(self.sessions.kw["bind"]), self.durable)
            if self._running.get(key) is self:
                del self._running[key]

    def _commit(self, group: list[_Step[Any]]) -> None:
        """Intake's steps each in a savepoint; the bookkeeping's, whose failures are rare, all
        in one go, and only after a failure each in a transaction of its own. A step alone
        needs no savepoint: its failure rolls back only itself."""
        try:
            if self.durable or len(group) == 1:
                self._run(group, savepoints=len(group) > 1)
            elif not self._run(group, savepoints=False, again=True):
                for step in group:
                    self._run([step], savepoints=False)
        finally:
            for step in group:
                step.done.set()

    def _run(self, group: list[_Step[Any]], savepoints: bool, again: bool = False) -> bool:
        """One transaction for `group`; True once committed. A failure is given to every step
        that has none of its own, unless the group is to be run `again` step by step."""
        try:
            with transaction(self.sessions, durable=self.durable) as conn:
                for step in group:
                    if savepoints:
                        _run_in_savepoint(conn, step)
                    else:
                        step.result = step.run(conn)
        except BaseException as exc:  # the group's transaction failed: none of it was stored
            if again and isinstance(exc, Exception):
                for step in group:
                    step.result, step.error = None, None
                return False
            for step in group:
                step.error = step.error or exc
            if not isinstance(exc, Exception):
                raise
            if len(group) > 1:
                log.warning("a group of %d steps was not committed: %s", len(group), exc)
            return False
        if self.observe is not None:
            self.observe(len(group))
        return True


def _run_in_savepoint(conn: Connection, step: _Step[Any]) -> None:
    savepoint = conn.begin_nested()
    try:
        step.result = step.run(conn)
    except Exception as exc:
        step.error = exc
        if savepoint.is_active:
            savepoint.rollback()
        return
    if savepoint.is_active:
        savepoint.commit()
