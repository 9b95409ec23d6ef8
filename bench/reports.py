"""Reports benchmark: each report over 100,000 SRs, on SQLite and on PostgreSQL.

    python bench/reports.py                          # 100,000 SRs, both databases
    python bench/reports.py --requests 20000 --databases sqlite

It makes a database of its own (a temporary SQLite file; a PostgreSQL database dropped at the
end), fills it with Core bulk inserts: 20 customers, SRs spread over 2026 (94 % incidents at
P1-P4, the rest SecureHands, Technical Baseline Assessments and scans), each with its Initial
Response and not-updated Deadlines, its changes of state (request_events), an acknowledgement
Delivery and two messages; one in ten with not-updated alerts, one in fifty escalated with its
steps. Then it times each report, best and median of `--runs`:
- sla, overall, for the year (every SR), and for one customer;
- history of one customer for one quarter;
- escalations, overall, for the year;
- SecureHands units, overall and for one customer, for the year, over a unit ledger of each
  customer's monthly lots (2025 and 2026) and one SOW per SecureHands and Technical Baseline
  Assessment SR: its reservation, its session's units (pending, then a debit; one in ten
  forfeited, one in twenty partly credited), its release, and the lots' expiry;
- the account review's reports and charts for one customer and quarter (no mail).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import insert, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.core.hours import Calendar
from gateway.reports import periods, review
from gateway.reports.attainment import attainment
from gateway.reports.escalations import analysis
from gateway.reports.history import history
from gateway.reports.queries import CustomerRef
from gateway.reports.targets import goal
from gateway.reports.units import units_report
from gateway.securehands.units import expiry
from gateway.storage import tables as t
from gateway.storage.db import make_engine, make_sessions, migrate, transaction

ADMIN = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
BATCH = 5_000
YEAR = datetime(2026, 1, 1, tzinfo=UTC)
AS_OF = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)
CUSTOMERS = 20
TYPES = [("incident", 94), ("securehands", 4), ("technical_baseline_assessment", 1),
         ("vulnerability_assessment", 1)]  # fmt: skip
PRIORITIES = [(1, 5), (2, 10), (3, 70), (4, 15)]
BERLIN = Calendar("Europe/Berlin", "DE")
DAY = timedelta(days=1)


def pick(rng: random.Random, weighted: list[tuple[Any, int]]) -> Any:
    return rng.choices([v for v, _ in weighted], [w for _, w in weighted])[0]


def fill(sessions: Any, requests: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    # SRs are numbered in the order they were opened, as the gateway numbers them
    seconds = sorted(rng.randrange(365 * 24 * 3600) for _ in range(requests))
    with transaction(sessions) as conn:
        conn.execute(insert(t.CUSTOMERS), [
            {"id": c, "name": f"Customer {c:02d}", "timezone": "Europe/Berlin", "country": "DE",
             "subdivision": None, "created_at": YEAR} for c in range(1, CUSTOMERS + 1)
        ])  # fmt: skip
        conn.execute(insert(t.CONTACTS), [
            {"id": c, "customer_id": c, "email": f"tam{c}@customer{c}.example", "name": "TAM",
             "language": "en", "role": "tam", "created_at": YEAR, "removed_at": None}
            for c in range(1, CUSTOMERS + 1)
        ])  # fmt: skip
    ids = iter(range(1, 10**9))
    for start in range(1, requests + 1, BATCH):
        rows: dict[str, list[dict[str, Any]]] = {name: [] for name in TABLES}
        for sr in range(start, min(start + BATCH, requests + 1)):
            one_request(rng, sr, YEAR + timedelta(seconds=seconds[sr - 1]), rows, ids)
        with transaction(sessions) as conn:
            for name, table in TABLES.items():
                if rows[name]:
                    conn.execute(insert(table), rows[name])
    fill_units(sessions, rng, requests)
    with transaction(sessions) as conn:
        conn.execute(text("ANALYZE"))


def fill_units(sessions: Any, rng: random.Random, requests: int) -> None:
    """Each customer's lots (one a month from January 2025, 60 units, valid 12 months) and the
    ledger lines of one SOW for each SecureHands SR (5 % of them, as TYPES has it)."""
    lots, lines = [], []
    ids = iter(range(1, 10**9))
    for customer in range(1, CUSTOMERS + 1):
        bought = []
        for n in range(24):
            day = date(2025 + n // 12, 1 + n % 12, 1)
            lot = {"id": next(ids), "customer_id": customer, "units": Decimal(60),
                   "purchased_on": day, "expires_on": expiry(day), "reference": f"PO-{n}",
                   "created_at": local_midnight(day)}  # fmt: skip
            lots.append(lot)
            bought.append(lot)
            lines.append(line(next(ids), customer, "purchase", 60, lot["id"], lot["created_at"]))
        for _ in range(requests * 5 // 100 // CUSTOMERS):
            at = YEAR + timedelta(seconds=rng.randrange(360 * 24 * 3600))
            lot = next(b for b in bought if b["expires_on"] > at.date())  # first to expire
            lines += sow_lines(rng, ids, customer, lot["id"], at)
        for lot in bought:
            lapse = local_midnight(lot["expires_on"])
            if lapse <= AS_OF:
                lines.append(line(next(ids), customer, "expire", 3, lot["id"], lapse))
    lines.sort(key=lambda row: (row["at"], row["id"]))
    with transaction(sessions) as conn:
        conn.execute(insert(t.UNIT_LOTS), lots)
        for start in range(0, len(lines), BATCH):
            conn.execute(insert(t.UNIT_LEDGER), lines[start : start + BATCH])


def sow_lines(
    rng: random.Random, ids: Iterator[int], customer: int, lot: int, at: datetime
) -> list[dict[str, Any]]:
    planned, used = 8, rng.randint(2, 8)
    taken = "forfeit" if rng.random() < 0.1 else "pending"
    found = [
        line(next(ids), customer, "reserve", planned, None, at),
        line(next(ids), customer, taken, used, lot, at + timedelta(days=3), used),
    ]
    if taken == "pending":
        found.append(line(next(ids), customer, "debit", used, lot, at + timedelta(days=5)))
        if rng.random() < 0.05:
            found.append(line(next(ids), customer, "credit", 1, lot, at + timedelta(days=6)))
    if used < planned:
        found.append(line(next(ids), customer, "release", planned - used, None, at + DAY * 7))
    return found


def line(
    line_id: int,
    customer: int,
    kind: str,
    units: int,
    lot: int | None,
    at: datetime,
    from_reserve: int = 0,
) -> dict[str, Any]:
    return {"id": line_id, "customer_id": customer, "kind": kind, "units": Decimal(units),
            "from_reserve": Decimal(from_reserve), "lot_id": lot, "sow_id": None,
            "session_id": None, "at": at, "by": "bench", "note": ""}  # fmt: skip


def local_midnight(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), BERLIN.zone).astimezone(UTC)


def one_request(
    rng: random.Random,
    sr: int,
    opened: datetime,
    rows: dict[str, list[dict[str, Any]]],
    ids: Iterator[int],
) -> None:
    kind, priority = pick(rng, TYPES), pick(rng, PRIORITIES)
    target = goal(kind, priority)
    assert target is not None
    amount = timedelta(minutes=target.minutes)
    calendar = BERLIN if target.standard_hours else Calendar(premium=True)
    due = calendar.add_working_time(opened, amount)
    warn = calendar.add_working_time(opened, amount * 0.8)
    met = calendar.add_working_time(opened, amount * rng.uniform(0.1, 1.5))
    answered = met if rng.random() < 0.95 and met <= AS_OF else None
    closed = (answered or opened) + timedelta(hours=rng.uniform(1, 200))
    closed = closed if closed < AS_OF - timedelta(days=2) else None
    rows["requests"].append({
        "id": sr, "public_id": f"SR-{sr:09d}", "customer_id": 1 + sr % CUSTOMERS,
        "requester_id": None, "title": f"bench {sr}", "type": kind, "priority": priority,
        "requested_priority": None, "requested_reason": "", "state": "closed" if closed else "open",
        "language": "en", "entitlement": {"status": "covered", "product": f"Product {sr % 7}"},
        "follow_up_of_id": None, "assigned_to": None, "created_at": opened, "updated_at": opened,
        "initial_response_at": answered, "last_soc_update_at": answered, "closed_at": closed,
        "tam_notified_at": None,
    })  # fmt: skip
    for deadline_kind, deadline_due in (("initial_response", due), ("update", opened)):
        rows["deadlines"].append({
            "id": next(ids), "sr_id": sr, "escalation_id": None, "kind": deadline_kind,
            "started_at": opened, "due_at": deadline_due, "warn_at": warn,
            "warned_at": None, "breached_at": None,
            "met_at": answered if deadline_kind == "initial_response" else None,
            "next_at": None, "created_at": opened,
        })  # fmt: skip
    states = [(opened, None, "open")]
    if answered and rng.random() < 0.3:
        states += [
            (answered, "open", "waiting"),
            (answered + timedelta(hours=5), "waiting", "open"),
        ]
    if closed:
        states += [
            (closed - timedelta(hours=1), "open", "resolved"),
            (closed, "resolved", "closed"),
        ]
    rows["events"] += [
        {"id": next(ids), "sr_id": sr, "at": at, "from_state": a, "to_state": b, "by": ""}
        for at, a, b in states
    ]
    for at, who in ((opened, "contact"), (answered or opened, "soc")):
        rows["messages"].append({
            "id": next(ids), "sr_id": sr, "raw_mail_id": None, "direction": "in",
            "author_kind": who, "author_address": "x@example.com", "author_name": "",
            "message_id": None, "subject": "s", "text": "bench text", "reply_text": "bench text",
            "html": None, "language": "en", "internal": False, "created_at": at,
        })  # fmt: skip
    templates = ["request_opened"] + ["not_updated"] * (rng.randint(1, 3) if sr % 10 == 0 else 0)
    for template in templates:
        rows["deliveries"].append(delivery(next(ids), sr, template, opened))
    if sr % 50 == 0:
        escalation(rng, sr, opened, priority, rows, ids)


def delivery(delivery_id: int, sr: int, template: str, at: datetime) -> dict[str, Any]:
    return {
        "id": delivery_id, "sr_id": sr, "raw_mail_id": None, "template": template,
        "audience": "soc", "language": "en", "recipient": "soc-queue@securecall.example",
        "context": {}, "message_id": f"<{delivery_id}@bench>", "in_reply_to": None,
        "references": "", "auto_submitted": "auto-generated", "queue": "mail", "status": "sent",
        "attempts": 1, "next_attempt_at": at, "enqueued_at": at, "claimed_at": at, "sent_at": at,
        "last_error": "", "created_at": at,
    }  # fmt: skip


def escalation(
    rng: random.Random,
    sr: int,
    opened: datetime,
    priority: int,
    rows: dict[str, list[dict[str, Any]]],
    ids: Iterator[int],
) -> None:
    escalation_id, at = next(ids), opened + timedelta(hours=rng.uniform(1, 48))
    rows["escalations"].append({
        "id": escalation_id, "sr_id": sr, "source": rng.choice(("customer", "soc")),
        "requested_by": "x@example.com", "reason": "", "level": "duty_management",
        "opened_at": at, "closed_at": at + timedelta(days=4),
    })  # fmt: skip
    steps = [(at, "opened"), (at, "duty_management_alerted")]
    if rng.random() < 0.8:
        steps.append((at + timedelta(minutes=rng.uniform(5, 600)), "plan_given"))
    if rng.random() < 0.2:
        steps.append((at + timedelta(days=1 if priority == 1 else 3), "director_escalated"))
    steps.append((at + timedelta(days=4), "closed"))
    rows["steps"] += [
        {"id": next(ids), "escalation_id": escalation_id, "at": when, "step": step, "detail": ""}
        for when, step in steps
    ]


TABLES = {
    "requests": t.REQUESTS,
    "deadlines": t.DEADLINES,
    "events": t.REQUEST_EVENTS,
    "messages": t.MESSAGES,
    "deliveries": t.DELIVERIES,
    "escalations": t.ESCALATIONS,
    "steps": t.ESCALATION_STEPS,
}


def timed(sessions: Any, runs: int, work: Callable[[Any], Any]) -> tuple[float, float]:
    spent = []
    for _ in range(runs):
        began = time.perf_counter()
        with transaction(sessions, readonly=True) as conn:
            work(conn)
        spent.append(time.perf_counter() - began)
    return min(spent), statistics.median(spent)


def measure(name: str, url: str, requests: int, runs: int) -> None:
    engine = make_engine(url)
    migrate(engine)
    sessions = make_sessions(engine)
    began = time.perf_counter()
    fill(sessions, requests)
    print(f"\n{name}: {requests:,} SRs filled in {time.perf_counter() - began:.1f} s")
    year = periods.days(YEAR.date(), datetime(2026, 12, 31).date(), "Europe/London")
    quarter = periods.quarter("2026Q2", "Europe/London")
    one = CustomerRef(3, "Customer 03", "Europe/Berlin")
    cases: list[tuple[str, Callable[[Any], Any]]] = [
        ("sla, all customers, 2026", lambda c: attainment(c, year, AS_OF)),
        ("sla, one customer, 2026", lambda c: attainment(c, year, AS_OF, one.name, one.id)),
        ("history, one customer, 2026 Q2", lambda c: history(c, one.name, one.id, quarter, AS_OF)),
        ("escalations, all customers, 2026", lambda c: analysis(c, year, AS_OF)),
        ("units, all customers, 2026", lambda c: units_report(c, year, AS_OF)),
        ("units, one customer, 2026", lambda c: units_report(c, year, AS_OF, one.name, one.id)),
        ("account review, one customer, Q2", lambda c: review.gather(c, one, quarter, AS_OF)),
    ]
    for label, work in cases:
        best, median = timed(sessions, runs, work)
        print(f"  {label:38} best {best:6.3f} s   median {median:6.3f} s   (target < 2 s)")
    engine.dispose()


@contextmanager
def postgres() -> Iterator[str]:
    name = f"gateway_reports_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield ADMIN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
            )
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--databases", default="sqlite,postgresql")
    args = parser.parse_args()
    chosen = args.databases.split(",")
    if "sqlite" in chosen:
        with tempfile.TemporaryDirectory() as folder:
            measure("SQLite", f"sqlite:///{folder}/bench.db", args.requests, args.runs)
    if "postgresql" in chosen:
        with postgres() as url:
            measure("PostgreSQL", url, args.requests, args.runs)


if __name__ == "__main__":
    main()
