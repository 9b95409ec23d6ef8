"""Fan-out benchmark: a bulletin's mails/s from `publish` to the last mail at Postfix's
smtp-sink, against raw smtplib over one connection; and acknowledgement latency during a large
fan-out.

For each set-up (the embedded default, `gateway run`; PostgreSQL + RabbitMQ, `gateway smtp` and
`dramatiq workers.main`) it writes N subscribers, publishes a bulletin with `gateway bulletins
publish --no-wait` and counts the mails smtp-sink reports (`-c`) until N arrived. Just before
and just after each set-up, raw smtplib sends N prebuilt mails of the same size over one
connection to a fresh smtp-sink: the faster of the two is the yardstick that set-up is measured
against. Then,
with a second database of M subscribers and an aiosmtpd sink that notes each acknowledgement's
arrival, it publishes a bulletin and sends customer mails while the bulletin goes out: p50/p99
from each 250 to its acknowledgement's arrival. Everything on loopback; every loop is bounded.

    python bench/fanout.py                                   # 10,000 and 50,000, both set-ups
    python bench/fanout.py --setups embedded --count 2000 --latency-count 5000
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import re
import shutil
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.intake import (
    POSTGRES_ADMIN,
    RABBITMQ_URL,
    _drop_database,
    _purge_rabbitmq,
    _sink,
    free_port,
    percentile,
    start_server,
    wait_port,
)

SMTP_SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
GATEWAY = [sys.executable, "-m", "cli"]
EXTRA: dict[str, str] = {}  # settings given with --set, for every gateway process


class SmtpSink:
    """Postfix's smtp-sink with its running counter (-c) read as it goes: when mail n came."""

    def __init__(self) -> None:
        self.port = free_port()
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        command = [SMTP_SINK, "-c", *user, f"127.0.0.1:{self.port}", "1024"]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE)
        self.count, self.at = 0, time.monotonic()
        self.changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        wait_port(self.port)

    def _read(self) -> None:
        assert self.process.stdout is not None
        buffer = b""
        while chunk := self.process.stdout.read1(65536):
            buffer += chunk
            *lines, buffer = buffer.split(b"\r")
            for line in lines:
                found = re.search(rb"mesg=(\d+)", line)
                if found:
                    with self.changed:
                        self.count, self.at = int(found.group(1)), time.monotonic()
                        self.changed.notify_all()

    def wait_for(self, count: int, timeout: float) -> float:
        """When the count reached `count` (monotonic), or NaN after `timeout`."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while self.count < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return float("nan")
                self.changed.wait(left)
            return self.at

    def close(self) -> None:
        self.process.kill()
        self.process.wait(10)


def environment(kind: str, work: Path, sink_port: int) -> tuple[dict[str, str], Any]:
    smtp_port, web_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: bytecode cached
    env.update(
        {
            "GATEWAY_CONFIG": str(work / "none.toml"),
            "GATEWAY_VAR_DIR": str(work / f"var-{uuid.uuid4().hex[:6]}"),
            "GATEWAY_SMTP_PORT": str(smtp_port),
            "GATEWAY_WEB_PORT": str(web_port),
            "GATEWAY_OUTBOUND_URL": f"smtp://127.0.0.1:{sink_port}?tls=none",
            "GATEWAY_SECRET_KEY": "bench",
            "GATEWAY_SWEEP_INTERVAL": "0.5",  # how soon `gateway run` takes up a publish
            "GATEWAY_AUTOREPLY_PER_HOUR": "1000000",
            "GATEWAY_AUTOREPLY_PER_DAY": "1000000",
            "GATEWAY_SMTP_SENDER_RATE": "1000000",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(EXTRA)  # --set KEY=VALUE
    cleanup = None
    if kind == "pg-rabbitmq":
        import psycopg

        name = f"gateway_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        env["GATEWAY_DATABASE_URL"] = POSTGRES_ADMIN.rsplit("/", 1)[0] + f"/{name}"
        env["GATEWAY_BROKER_URL"] = RABBITMQ_URL
        cleanup = name
    return env, cleanup


def prepare(env: dict[str, str], subscribers: int, warm: bool = False) -> int:
    """The demo directory, `subscribers` subscribed to its FortiGate, and a draft bulletin;
    `warm`: a second draft, of a kind nobody wants, as bulletin id 1 (`warm_up`)."""
    subprocess.run([*GATEWAY, "demo"], env=env, check=True, capture_output=True, timeout=120)
    os.environ.update(env)
    from gateway.assembly import build
    from gateway.core.settings import load
    from gateway.storage import db
    from tests.support.bulletins import new_bulletin, subscribe_many

    rt = build(load())
    subscribe_many(rt, subscribers, kinds=["patch", "upgrade"])
    if warm:
        new_bulletin(rt, "Nobody's bulletin", kind="bulletin")
    bulletin_id = new_bulletin(rt)
    db.close(rt.sessions)
    for key in env:
        if key.startswith("GATEWAY_"):
            del os.environ[key]
    return bulletin_id


def start(kind: str, env: dict[str, str], log: Any) -> list[subprocess.Popen[bytes]]:
    # BENCH_WRAP runs the gateway under a profiler, e.g. "py-spy record --gil -f raw -o p.txt --"
    wrap = os.environ.get("BENCH_WRAP", "").split()
    if kind == "embedded":
        processes = [subprocess.Popen([*wrap, *GATEWAY, "run"], env=env, stdout=log, stderr=log)]
    else:
        _purge_rabbitmq()
        worker = [*wrap, sys.executable, "-m", "dramatiq", "workers.main", "--processes", "2"]
        processes = [
            subprocess.Popen([*GATEWAY, "smtp"], env=env, stdout=log, stderr=log),
            subprocess.Popen([*worker, "--threads", "4"], env=env, stdout=log, stderr=log),
        ]
    wait_port(int(env["GATEWAY_SMTP_PORT"]))
    time.sleep(2.0)  # the workers' imports and first connections
    return processes


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and of its descendants still running (/proc, Linux)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        # a child is listed under the thread that started it (bulk processes: a worker thread)
        tasks = Path(f"/proc/{pid}/task").iterdir()
        children = [c for t in tasks for c in (t / "children").read_text().split()]
    except OSError:
        return 0.0
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return own + sum(cpu_seconds(int(child)) for child in children)


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


def publish(env: dict[str, str], bulletin_id: int) -> None:
    command = [*GATEWAY, "bulletins", "publish", str(bulletin_id), "--no-wait"]
    subprocess.run(command, env=env, check=True, capture_output=True, timeout=120)


def warm_up(env: dict[str, str], log_path: Path) -> None:
    """Publish the bulletin nobody gets, and wait until the embedded gateway's bulk processes
    it starts (GATEWAY_BULK_PROCESSES, 2 unless --set) say they send: the gateway as it is once
    it has sent a bulletin since it started."""
    publish(env, 1)
    wanted = int(env.get("GATEWAY_BULK_PROCESSES", "2"))
    deadline = time.monotonic() + 60
    while log_path.read_text().count("sending bulletin mail claimed") < wanted:
        if time.monotonic() > deadline:
            raise SystemExit("the bulk processes did not start within 60 s")
        time.sleep(0.1)


def measure_rate(kind: str, count: int, work: Path, warm: bool = False) -> tuple[float, float]:
    """mails/s from publish to the last mail at the sink, and the gateway's CPU ms per mail
    over the same span (its processes' user + system time, publish command not counted);
    `warm` (embedded): from a gateway whose bulk processes run already."""
    sink = SmtpSink()
    env, database = environment(kind, work, sink.port)
    warm = warm and kind == "embedded"
    try:
        bulletin_id = prepare(env, count, warm)
        with (work / f"{kind}.log").open("ab") as log:
            processes = start(kind, env, log)
            if warm:
                warm_up(env, work / f"{kind}.log")
            try:
                cpu = sum(cpu_seconds(p.pid) for p in processes)
                began = time.monotonic()
                publish(env, bulletin_id)
                last = sink.wait_for(count, timeout=1800)
                cpu = sum(cpu_seconds(p.pid) for p in processes) - cpu
            finally:
                stop(processes)
        return count / (last - began), cpu * 1000 / count
    finally:
        sink.close()
        if database:
            _drop_database(database)


def measure_raw(count: int, size: int) -> float:
    """smtplib, one connection, `count` prebuilt mails of `size` bytes, to the same smtp-sink."""
    sink = SmtpSink()
    body = b"x" * 76 + b"\r\n"
    mail = b"From: sus@securecall.example\r\nSubject: raw\r\n\r\n" + body * (size // 78)
    try:
        client = smtplib.SMTP("127.0.0.1", sink.port, timeout=60)
        client.ehlo("bench.example")
        began = time.monotonic()
        for n in range(count):
            client.sendmail("bounces@securecall.example", [f"s{n:05d}@bulk.example"], mail)
        last = sink.wait_for(count, timeout=60)
        client.quit()
        return count / (last - began)
    finally:
        sink.close()


def measure_latency(kind: str, count: int, acks: int, work: Path) -> tuple[float, float, int]:
    """p50, p99 (s) of 250 -> acknowledgement while a `count`-recipient bulletin goes out."""
    from bench.intake import make_mail

    port = free_port()
    arrivals: Any = mp.Queue()
    sink = start_server(_sink, port, arrivals)
    env, database = environment(kind, work, port)
    try:
        bulletin_id = prepare(env, count)
        with (work / f"{kind}-latency.log").open("ab") as log:
            processes = start(kind, env, log)
            try:
                publish(env, bulletin_id)
                time.sleep(5.0)  # the fan-out is writing and the bulk queue is full
                sent = _send_acks(int(env["GATEWAY_SMTP_PORT"]), acks, make_mail)
                got = _arrivals(arrivals, set(sent), timeout=300)
            finally:
                stop(processes)
        latencies = [got[m] - sent[m] for m in got]
        return percentile(latencies, 0.5), percentile(latencies, 0.99), len(latencies)
    finally:
        sink.close()
        if database:
            _drop_database(database)


def _send_acks(port: int, acks: int, make_mail: Any) -> dict[str, float]:
    """`acks` customer mails, 5 a second; the time of each one's 250."""
    sent: dict[str, float] = {}
    client = smtplib.SMTP("127.0.0.1", port, timeout=60)
    for n in range(acks):
        message_id = f"<latency-{uuid.uuid4().hex}@example.com>"
        client.sendmail("alice@example.com", ["soc@securecall.example"], make_mail(message_id))
        sent[message_id] = time.monotonic()
        time.sleep(max(0.0, 0.2 - (time.monotonic() - sent[message_id])))
        if n % 20 == 19:
            print(f"    {n + 1} mails sent during the fan-out", flush=True)
    client.quit()
    return sent


def _arrivals(arrivals: Any, wanted: set[str], timeout: float) -> dict[str, float]:
    got: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while len(got) < len(wanted) and time.monotonic() < deadline:
        try:
            at, in_reply_to = arrivals.get(timeout=max(0.1, deadline - time.monotonic()))
        except Exception:
            break
        if in_reply_to in wanted:
            got.setdefault(in_reply_to, at)
    return got


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--setups", default="embedded,pg-rabbitmq")
    parser.add_argument("--count", type=int, default=10_000, help="subscribers of the rate run")
    parser.add_argument("--latency-count", type=int, default=50_000)
    parser.add_argument("--acks", type=int, default=60, help="customer mails in the latency run")
    parser.add_argument(
        "--warm",
        action="store_true",
        help="embedded: measure once the bulk processes run (a first bulletin starts them)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a setting for the gateway's processes, e.g. GATEWAY_WORKER_THREADS=8 (repeatable)",
    )
    args = parser.parse_args()
    for item in args.set:
        key, _, value = item.partition("=")
        EXTRA[key] = value
    work = Path(tempfile.mkdtemp(prefix="gateway-fanout-"))
    print(f"{os.cpu_count()} cores; smtp-sink at {SMTP_SINK}", flush=True)
    try:
        for kind in args.setups.split(","):
            # the yardstick just before and just after each set-up, so that both face the same
            # machine (its speed here varies by up to twice between minutes); the set-up is held
            # to the faster of the two
            before = measure_raw(args.count, 4500)
            rate, cpu = measure_rate(kind, args.count, work, args.warm)
            after = measure_raw(args.count, 4500)
            raw = max(before, after)
            print(
                f"\nraw smtplib, one connection: {before:7.1f} before, {after:7.1f} after",
                flush=True,
            )
            print(f"{kind}: {args.count} subscribers", flush=True)
            print(f"  publish -> last mail   {rate:7.1f} mails/s = {rate / raw:.2f} x raw")
            print(f"  gateway CPU            {cpu:7.2f} ms per mail (user + system)", flush=True)
            if args.latency_count <= 0:
                continue
            p50, p99, n = measure_latency(kind, args.latency_count, args.acks, work)
            print(
                f"  during a {args.latency_count}-recipient fan-out: {n}/{args.acks} acks, "
                f"250 -> ack p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms",
                flush=True,
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    mp.set_start_method("fork")
    main()
