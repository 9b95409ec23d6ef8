"""Clock benchmark: one sweep over 100,000 open SRs on PostgreSQL, idle and with 1,000 due.

    python bench/clock.py                      # 100,000 SRs, 1,000 due
    python bench/clock.py --requests 20000 --due 500

It creates a database of its own (dropped at the end), fills it with open SRs, each with an
Initial Response and a not-updated Deadline in the future, and measures `clock.tick`:
- idle: nothing is due (the index on next_at is all it reads), repeated, median and worst;
- due: 1,000 Initial Response targets made due at once, ticked until all are handled (each
  writes its breach alert into the outbox in the same transaction).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from sqlalchemy import insert, select, text, update

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway import clock
from gateway.assembly import build
from gateway.core.ids import new_sr_id
from gateway.core.settings import Settings
from gateway.storage import tables as store

ADMIN = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
BATCH = 10_000


def fill(rt, requests: int) -> None:  # type: ignore[no-untyped-def]
    now = datetime.now(UTC)
    with rt.sessions.begin() as session:
        conn = session.connection()
        customer = conn.execute(
            insert(store.CUSTOMERS)
            .values(
                name="Bench Corp",
                timezone="Europe/Berlin",
                country="DE",
                created_at=now,
            )
            .returning(store.CUSTOMERS.c.id)
        ).scalar_one()
    for start in range(0, requests, BATCH):
        count = min(BATCH, requests - start)
        with rt.sessions.begin() as session:
            conn = session.connection()
            ids = (
                conn.execute(
                    insert(store.REQUESTS).returning(store.REQUESTS.c.id),
                    [
                        {
                            "public_id": new_sr_id(),
                            "customer_id": customer,
                            "requester_id": None,
                            "title": f"bench {start + n}",
                            "type": "incident",
                            "priority": 3,
                            "requested_priority": None,
                            "requested_reason": "",
                            "state": "open",
                            "language": "en",
                            "entitlement": {},
                            "follow_up_of_id": None,
                            "created_at": now,
                            "updated_at": now,
                            "initial_response_at": None,
                        }
                        for n in range(count)
                    ],
                )
                .scalars()
                .all()
            )
            later = now + timedelta(days=30)
            conn.execute(
                insert(store.DEADLINES),
                [
                    {
                        "sr_id": sr,
                        "escalation_id": None,
                        "kind": kind,
                        "started_at": now,
                        "due_at": later,
                        "warn_at": None,
                        "warned_at": None,
                        "breached_at": None,
                        "met_at": None,
                        "next_at": later,
                        "created_at": now,
                    }
                    for sr in ids
                    for kind in ("initial_response", "update")
                ],
            )
    with rt.sessions.begin() as session:
        session.execute(text("ANALYZE"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--due", type=int, default=1_000)
    parser.add_argument("--idle-runs", type=int, default=50)
    args = parser.parse_args()
    name = f"gateway_clock_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        url = ADMIN.rsplit("/", 1)[0] + f"/{name}"
        settings = Settings(database_url=url, var_dir=Path("/tmp") / name, secret_key="bench")
        rt = build(settings)
        began = time.perf_counter()
        fill(rt, args.requests)
        print(
            f"{args.requests} open SRs, {2 * args.requests} Deadlines on PostgreSQL "
            f"(filled in {time.perf_counter() - began:.1f} s)"
        )
        clock.tick(rt)  # warm the connection pool and the statement cache
        idle = []
        for _ in range(args.idle_runs):
            began = time.perf_counter()
            handled = clock.tick(rt)
            idle.append(time.perf_counter() - began)
            assert handled == 0
        print(
            f"idle sweep: median {statistics.median(idle) * 1000:.2f} ms, "
            f"worst {max(idle) * 1000:.2f} ms over {args.idle_runs} sweeps (target < 50 ms)"
        )
        with rt.sessions.begin() as session:
            plan = (
                session.execute(
                    text(
                        "EXPLAIN SELECT * FROM deadlines WHERE next_at <= now() "
                        "ORDER BY next_at LIMIT 500"
                    )
                )
                .scalars()
                .all()
            )
        print("  plan: " + " / ".join(line.strip() for line in plan[:2]))
        with rt.sessions.begin() as session:
            conn = session.connection()
            chosen = (
                conn.execute(
                    select(store.DEADLINES.c.id)
                    .where(store.DEADLINES.c.kind == "initial_response")
                    .limit(args.due)
                )
                .scalars()
                .all()
            )
            past = datetime.now(UTC) - timedelta(seconds=1)
            conn.execute(
                update(store.DEADLINES)
                .where(store.DEADLINES.c.id.in_(chosen))
                .values(due_at=past, next_at=past)
            )
        began = time.perf_counter()
        handled = ticks = 0
        while ticks < 100:
            done = clock.tick(rt)
            ticks += 1
            handled += done
            if not done:
                break
        elapsed = time.perf_counter() - began
        print(
            f"{args.due} due deadlines: {handled} handled in {elapsed:.2f} s over {ticks} ticks "
            f"({handled / elapsed:.0f}/s; target < 5 s), each writing its breach alert"
        )
        rt.sessions.kw["bind"].dispose()
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
            )
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


if __name__ == "__main__":
    main()
