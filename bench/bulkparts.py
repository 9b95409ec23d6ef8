"""A bulletin's two halves measured apart, in this process: the fan-out writing its Deliveries,
and one thread sending them to Postfix's smtp-sink (`deliver_bulk` over chunks of ten, as a
worker thread does), each as a rate and as CPU per mail.

bench/fanout.py measures the whole, from `publish` to the last mail; this says which half a
change moved. Everything on loopback; every loop is bounded by the subscribers written.

    python bench/bulkparts.py                                  # 3,000 subscribers, both set-ups
    python bench/bulkparts.py --setups embedded --count 10000 --set GATEWAY_BULK_CONNECTIONS=1
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import fanout
from bench.fanout import SmtpSink, _drop_database, environment, prepare


def measure(kind: str, count: int, work: Path) -> tuple[float, float, float, float]:
    """(fan-out mails/s, its CPU ms a mail, sending mails/s, its CPU ms a mail)."""
    sink = SmtpSink()
    env, database = environment(kind, work, sink.port)
    env["GATEWAY_BROKER_URL"] = ""  # the ids are handed to deliver_bulk here, not to a broker
    saved = dict(os.environ)
    try:
        bulletin_id = prepare(env, count)
        os.environ.update(env)
        return _measure(bulletin_id, count, sink)
    finally:
        os.environ.clear()
        os.environ.update(saved)
        sink.close()
        if database:
            _drop_database(database)


def _measure(bulletin_id: int, count: int, sink: SmtpSink) -> tuple[float, float, float, float]:
    from sqlalchemy import select

    from gateway.assembly import build
    from gateway.core.settings import load
    from gateway.storage import db
    from gateway.storage.tables import DELIVERIES
    from gateway.sus.bulletins import publish
    from gateway.sus.fanout import fan_out
    from workers.bulk import deliver_bulk
    from workers.render import Renderer
    from workers.transport import make_transport

    rt = build(load())
    transport = make_transport(rt.settings.outbound, lanes=rt.settings.bulk_connections)
    try:
        publish(rt, bulletin_id, "bench", hand_over=False)
        began, cpu = time.perf_counter(), time.process_time()
        written = fan_out(rt, bulletin_id)
        fan_rate = written / (time.perf_counter() - began)
        fan_cpu = (time.process_time() - cpu) * 1000 / written
        with db.transaction(rt.sessions, readonly=True) as conn:
            query = select(DELIVERIES.c.id).where(DELIVERIES.c.queue == "bulk")
            ids = list(conn.scalars(query.order_by(DELIVERIES.c.id)))
        renderer = Renderer()
        deliver_bulk(ids[:10], rt, transport, renderer)  # connections opened, templates loaded
        began, cpu = time.perf_counter(), time.process_time()
        for start in range(10, len(ids), 10):
            deliver_bulk(ids[start : start + 10], rt, transport, renderer)
        sent = len(ids) - 10
        send_rate = sent / (time.perf_counter() - began)
        send_cpu = (time.process_time() - cpu) * 1000 / sent
        if math.isnan(sink.wait_for(count, timeout=60)):
            raise SystemExit(f"smtp-sink received {sink.count} of {count} mails")
    finally:
        transport.close()
        db.close(rt.sessions)
    return fan_rate, fan_cpu, send_rate, send_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--setups", default="embedded,pg-rabbitmq")
    parser.add_argument("--count", type=int, default=3_000, help="subscribers")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    for item in args.set:
        key, _, value = item.partition("=")
        fanout.EXTRA[key] = value
    with tempfile.TemporaryDirectory(prefix="gateway-bulkparts-") as work:
        for kind in args.setups.split(","):
            fan_rate, fan_cpu, send_rate, send_cpu = measure(kind, args.count, Path(work))
            print(f"{kind}: {args.count} subscribers", flush=True)
            print(f"  fan-out written       {fan_rate:7.0f} mails/s, {fan_cpu:.3f} ms CPU a mail")
            print(f"  one thread sending    {send_rate:7.0f} mails/s, {send_cpu:.3f} ms CPU a mail")


if __name__ == "__main__":
    main()
