"""§3.11.2 on PostgreSQL: sessions of one customer delivered, and accepted by two clocks, at the
same moment never take the same units twice (the customer's row lock, securehands/ledger.py)."""

from __future__ import annotations

import threading
import uuid
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select

from gateway import clock
from gateway.assembly import build
from gateway.core.runtime import Runtime
from gateway.intake.receipts import RawMail
from gateway.intake.receive import receive
from gateway.requests import engagements
from gateway.securehands import ledger, sessions, sows
from gateway.securehands.acts import Act
from gateway.securehands.balance import DEBIT, PENDING, Balance
from gateway.securehands.queries import customer_named, entries, request_id
from gateway.securehands.terms import SowTerms
from gateway.storage.db import transaction
from gateway.storage.records import request_row
from gateway.storage.tables import DEADLINES
from tests.support.harness import OffsetClock, mail, populate, settings_for
from tests.support.sink import Sink

MONDAY_10_BERLIN = datetime(2026, 11, 16, 9, 0, tzinfo=UTC)
SESSIONS_PER_SR = 6
SRS = 2


def _runtime(tmp_path: Path, postgres_url: str, sink: Sink, when: datetime) -> Runtime:
    settings = settings_for(tmp_path / "var", postgres_url, sink_port=sink.port)
    return build(settings, clock=OffsetClock(when))


def _sr(rt: Runtime) -> str:
    subject = f"SecureHands: work {uuid.uuid4().hex[:6]}"
    data = mail(subject=subject, message_id=f"<{uuid.uuid4().hex}@example.com>")
    receipt = receive(RawMail(data, "smtp", "alice@example.com", ("soc@securecall.example",)), rt)
    assert receipt.sr_id is not None
    return receipt.sr_id


def _doing(rt: Runtime, work: Callable[[Act], object]) -> object:
    with transaction(rt.sessions) as conn:
        return work(Act(conn, rt, "test", rt.now()))


def _engaged(rt: Runtime) -> list[str]:
    """Lot A (4 units, the first to expire) and lot B (40); SRs with a SOW of fixed 3-unit
    sessions (3 units reserved each, so that most of their units come from the balance)."""

    def prepare(act: Act) -> list[str]:
        owner = customer_named(act.conn, "Example Corp")
        assert owner is not None
        sows.buy(act, owner, Decimal(40), date(2026, 11, 2), "B")
        sows.buy(act, owner, Decimal(4), date(2026, 1, 15), "A")
        ids = []
        for public_id in [_sr(rt) for _ in range(SRS)]:
            found = request_id(act.conn, public_id)
            assert found is not None
            sr = request_row(act.conn, found)
            engagements.agree_sow(act, sr, SowTerms(Decimal(3), Decimal(3)))
            for _ in range(SESSIONS_PER_SR):
                engagements.request_session(act, sr)
            ids.append(public_id)
        return ids

    result = _doing(rt, prepare)
    assert isinstance(result, list)
    return result


def _at_once(workers: list[Callable[[], None]]) -> None:
    barrier = threading.Barrier(len(workers))
    errors: list[BaseException] = []

    def run(work: Callable[[], None]) -> None:
        barrier.wait()
        try:
            work()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors


def _deliver_all(rt: Runtime, public_id: str) -> Callable[[], None]:
    def work() -> None:
        for n in range(SESSIONS_PER_SR):
            start = MONDAY_10_BERLIN - timedelta(hours=2 * n + 2)

            def one(act: Act, start: datetime = start) -> object:
                found = request_id(act.conn, public_id)
                assert found is not None
                sr = request_row(act.conn, found)
                return sessions.deliver(act, sr, None, start, start + timedelta(hours=1))

            _doing(rt, one)

    return work


def _lines(rt: Runtime) -> dict[str, dict[tuple[int | None, int | None], Decimal]]:
    """Units per (session, lot) for the pending and debit lines."""

    def read(act: Act) -> object:
        owner = customer_named(act.conn, "Example Corp")
        assert owner is not None
        return entries(act.conn, owner.id)

    found: dict[str, dict[tuple[int | None, int | None], Decimal]] = defaultdict(
        lambda: defaultdict(Decimal)
    )
    lines = _doing(rt, read)
    assert isinstance(lines, list)
    for line in lines:
        if line.kind in (PENDING, DEBIT):
            found[line.kind][(line.session_id, line.lot_id)] += line.units
    return found


def test_sessions_of_one_customer_delivered_at_once_take_distinct_units(
    tmp_path: Path, sink: Sink, postgres_url: str
) -> None:
    rt = _runtime(tmp_path, postgres_url, sink, MONDAY_10_BERLIN)
    populate(rt)
    public_ids = _engaged(rt)
    # Two analysts record their SRs' sessions at the same moment, each in its own transactions
    _at_once([_deliver_all(rt, public_id) for public_id in public_ids])
    taken = _lines(rt)[PENDING]
    per_lot: dict[int | None, Decimal] = defaultdict(Decimal)
    for (_, lot_id), units in taken.items():
        per_lot[lot_id] += units
    assert sum(taken.values()) == 3 * SESSIONS_PER_SR * SRS
    figures = _doing(rt, lambda act: ledger.figures(act, _owner(act)))
    assert isinstance(figures, Balance)
    by_reference = {lot.lot.reference: lot for lot in figures.lots}
    # lot A (4 units) is used up exactly, never beyond; the rest comes from B; nothing beyond
    assert per_lot[by_reference["A"].lot.id] == 4
    assert per_lot[by_reference["B"].lot.id] == 3 * SESSIONS_PER_SR * SRS - 4
    assert figures.beyond == 0
    assert (by_reference["A"].left, by_reference["B"].left) == (0, 40 - (36 - 4))
    rt.sessions.kw["bind"].dispose()


def _acceptances(act: Act) -> list[bool]:
    rows = act.conn.execute(
        select(DEADLINES.c.met_at).where(DEADLINES.c.kind == "session_acceptance")
    )
    return [row.met_at is not None for row in rows]


def _owner(act: Act) -> object:
    owner = customer_named(act.conn, "Example Corp")
    assert owner is not None
    return owner


def test_sessions_accepted_by_two_clocks_at_once_are_each_debited_once(
    tmp_path: Path, sink: Sink, postgres_url: str
) -> None:
    rt = _runtime(tmp_path, postgres_url, sink, MONDAY_10_BERLIN)
    populate(rt)
    for public_id in _engaged(rt):
        _deliver_all(rt, public_id)()
    pending = _lines(rt)[PENDING]
    # Two clocks, each with its own engine, wake after the acceptance time, side by side
    later = MONDAY_10_BERLIN + timedelta(days=3)
    clocks = [_runtime(tmp_path, postgres_url, sink, later) for _ in range(2)]
    handled = [0, 0]

    def run(n: int) -> Callable[[], None]:
        def work() -> None:
            while True:
                done = clock.tick(clocks[n], limit=1)
                if not done:
                    return
                handled[n] += done

        return work

    _at_once([run(0), run(1)])
    assert all(handled)  # both clocks took part (the SRs' other targets are due too)
    acceptances = _doing(rt, _acceptances)
    assert acceptances == [True] * SESSIONS_PER_SR * SRS  # every one acted on
    debited = _lines(rt)[DEBIT]
    assert debited == pending  # each session's units, the same units, debited exactly once
    figures = _doing(rt, lambda act: ledger.figures(act, _owner(act)))
    assert isinstance(figures, Balance)
    assert (figures.pending, figures.debited) == (0, 36)
    for runtime in (rt, *clocks):
        runtime.sessions.kw["bind"].dispose()
