"""Intake benchmark: mails/s until every acknowledgement reached a relay, and ack latency.

For each set-up (`embedded`: the embedded default; `pg-rabbitmq`: PostgreSQL + RabbitMQ with
separate workers; `pg`: PostgreSQL with the in-process workers of `gateway run`; `forward`: no
gateway, only what every set-up does at the least, bench/forward.py) it starts the gateway, an
SMTP sink standing in for the relay, and several SMTP clients, then:

- throughput: N mails as fast as the clients can send, counted until the last acknowledgement
  arrived at the sink;
- latency: mails at a fixed rate (default 50/s), p50/p99 from the 250 to the ack's arrival.

In the same run it measures a bare aiosmtpd server that only appends each mail to a file and
fsyncs it, and prints the ratio. For each throughput run it also prints the CPU time per mail
of each party (the gateway's processes, PostgreSQL's, the sink, the clients, from /proc), and
what the machine's cores allow at that cost. Everything runs on loopback; every loop is bounded.

    python bench/intake.py                          # both set-ups, defaults below
    python bench/intake.py --setups embedded --count 1000 --clients 4
    python bench/intake.py --setups forward,embedded  # beside the ceiling the parties leave
    python bench/intake.py --processes 2            # two listener processes on the SMTP port
    python bench/intake.py --set GATEWAY_SMTP_WORKERS=2   # a setting of the gateway's processes
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import os
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

INTAKE = "soc@securecall.example"
SENDER = "alice@example.com"
POSTGRES_ADMIN = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
RABBITMQ_URL = os.environ.get("BENCH_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
IN_REPLY_TO = re.compile(rb"^In-Reply-To:\s*(<[^>]+>)", re.MULTILINE | re.IGNORECASE)
BODY = (
    "Hello SOC,\n\nsince this morning the IPsec tunnel between our Frankfurt and Hamburg sites "
    "drops every few minutes. The FortiGate 600E (FG6H0E5819900001) logs show phase 2 "
    "renegotiations. We attach nothing yet; the relevant log lines follow.\n\n"
    + "".join(
        f"2026-11-21 08:{n:02d}:13 ike 0:vpn-hh:1: sending DPD probe, seq {n}; "
        "no response from peer 203.0.113.7\n"
        for n in range(40)
    )
    + "\nBest regards,\nAlice Archer\nNetwork Operations, Example Corp\n"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port} after {timeout} s")


def make_mail(message_id: str) -> bytes:
    return (
        f"From: Alice Archer <{SENDER}>\r\nTo: SecureCall SOC <{INTAKE}>\r\n"
        f"Subject: IPsec tunnel Frankfurt-Hamburg drops\r\nMessage-ID: {message_id}\r\n"
        "Date: Sat, 21 Nov 2026 10:00:00 +0100\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n" + BODY.replace("\n", "\r\n")
    ).encode()


# --- servers in their own processes -----------------------------------------------------------


def _sink(port: int, arrivals: Any, ready: Any, stop: Any) -> None:
    """The relay: records (monotonic time, In-Reply-To) of every mail it is given."""
    from aiosmtpd.controller import Controller

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            found = IN_REPLY_TO.search(envelope.original_content or b"")
            arrivals.put((time.monotonic(), found.group(1).decode() if found else ""))
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    stop.wait(3600)
    controller.stop()


def _bare(port: int, path: str, ready: Any, stop: Any) -> None:
    """The yardstick: aiosmtpd that appends each mail to a file and fsyncs it, nothing more."""
    from aiosmtpd.controller import Controller

    out = open(path, "ab")  # noqa: SIM115 - lives as long as the process

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            out.write(envelope.original_content)
            out.flush()
            os.fsync(out.fileno())
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    stop.wait(3600)
    controller.stop()


@dataclass
class Server:
    process: mp.Process
    stop: Any

    def close(self) -> None:
        self.stop.set()
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()


def start_server(target: Any, *args: Any) -> Server:
    ready, stop = mp.Event(), mp.Event()
    process = mp.Process(target=target, args=(*args, ready, stop), daemon=True)
    process.start()
    if not ready.wait(30):
        raise RuntimeError(f"{target.__name__} did not start")
    return Server(process, stop)


# --- clients ----------------------------------------------------------------------------------


def _client(port: int, ids: list[str], start_at: float, interval: float, out: Any) -> None:
    """One SMTP connection; sends its mails (paced when `interval` > 0); reports each 250 time,
    and the CPU seconds the client took."""
    sent: list[tuple[str, float, float, int]] = []
    client = smtplib.SMTP("127.0.0.1", port, timeout=60)
    client.ehlo("bench.example.com")
    for n, message_id in enumerate(ids):
        if interval:
            delay = start_at + n * interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        began = time.monotonic()
        code = 0
        try:
            client.mail(SENDER)
            client.rcpt(INTAKE)
            code, _ = client.data(make_mail(message_id))
        except smtplib.SMTPException:
            code = -1
        sent.append((message_id, began, time.monotonic(), code))
    with contextlib.suppress(smtplib.SMTPException, OSError):
        client.quit()
    out.put((sent, time.process_time()))


def send(
    port: int, count: int, clients: int, rate: float = 0.0, cpu: list[float] | None = None
) -> list[tuple[str, float, float, int]]:
    """Send `count` mails from `clients` parallel connections; at `rate` mails/s if given. The
    clients' CPU seconds are added to `cpu` when given."""
    ids = [f"<bench-{uuid.uuid4().hex}@example.com>" for _ in range(count)]
    out: Any = mp.Queue()
    start_at = time.monotonic() + 0.5
    interval = clients / rate if rate else 0.0
    workers = []
    for k in range(clients):
        share = ids[k::clients]
        offset = start_at + (k / rate if rate else 0.0)
        workers.append(mp.Process(target=_client, args=(port, share, offset, interval, out)))
    for worker in workers:
        worker.start()
    results: list[tuple[str, float, float, int]] = []
    for _ in workers:
        sent, seconds = out.get(timeout=900)
        results.extend(sent)
        if cpu is not None:
            cpu.append(seconds)
    for worker in workers:
        worker.join(30)
    return results


def cpu_seconds(roots: list[int]) -> float:
    """CPU seconds (user + system) of the processes `roots` and all their descendants, from
    /proc; a child that ended and was waited for is counted in its parent's cutime/cstime."""
    tick = os.sysconf("SC_CLK_TCK")
    stats: dict[int, list[str]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                text = Path(f"/proc/{entry}/stat").read_text()
                stats[int(entry)] = text[text.rindex(")") + 2 :].split()
    children: dict[int, list[int]] = {}
    for pid, fields in stats.items():
        children.setdefault(int(fields[1]), []).append(pid)
    total, todo, seen = 0, list(roots), set()
    while todo:
        pid = todo.pop()
        if pid in seen or pid not in stats:
            continue
        seen.add(pid)
        fields = stats[pid]  # after the name: state ppid ... utime(12) stime(13) cutime cstime
        total += sum(int(v) for v in fields[11:15])
        todo.extend(children.get(pid, []))
    return total / tick


def postgres_pids() -> list[int]:
    """PostgreSQL's postmaster (its backends are its children), when it runs here."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if Path(f"/proc/{entry}/comm").read_text().strip() in ("postgres", "postmaster"):
                    status = Path(f"/proc/{entry}/stat").read_text()
                    if int(status[status.rindex(")") + 2 :].split()[1]) == 1:
                        pids.append(int(entry))
    return pids


def busy_seconds() -> float:
    """CPU seconds the whole machine spent busy so far (/proc/stat: all but idle and iowait)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def drain(arrivals: Any, quiet: float = 3.0, limit: float = 300.0) -> int:
    """Take what is still arriving until nothing came for `quiet` seconds (bounded)."""
    drained, deadline = 0, time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            arrivals.get(timeout=quiet)
        except Exception:
            return drained
        drained += 1
    return drained


def collect(
    arrivals: Any, wanted: set[str], timeout: float, others: int = 0
) -> tuple[dict[str, float], list[float]]:
    """Wait until an acknowledgement for every wanted Message-ID arrived, and `others` more
    mails (the SOC's copies), or the timeout. Returns the acks' and the others' arrival times."""
    got: dict[str, float] = {}
    rest: list[float] = []
    deadline = time.monotonic() + timeout
    while (len(got) < len(wanted) or len(rest) < others) and time.monotonic() < deadline:
        try:
            at, in_reply_to = arrivals.get(timeout=max(0.1, deadline - time.monotonic()))
        except Exception:
            break
        if in_reply_to in wanted and in_reply_to not in got:
            got[in_reply_to] = at
        else:
            rest.append(at)
    return got, rest


# --- the gateway under test -------------------------------------------------------------------


@dataclass
class Setup:
    name: str
    env: dict[str, str]
    processes: list[subprocess.Popen[bytes]]
    cleanup: list[Any]


def wait_started(log: Path, processes: int, timeout: float = 120.0) -> None:
    """With several processes, wait until the supervisor says that all of them listen."""
    if processes == 0:  # one per core, as the gateway counts them (cli/supervisor.py)
        processes = len(os.sched_getaffinity(0))
    if processes < 2:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if f"{processes} listener processes share the port" in log.read_text(errors="replace"):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{processes} listener processes did not start in {timeout} s")


def start_gateway(
    kind: str,
    sink_port: int,
    work: Path,
    processes: int = 1,
    extra: dict[str, str] | None = None,
) -> Setup:
    smtp_port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(
        {
            "GATEWAY_CONFIG": str(work / "none.toml"),
            "GATEWAY_VAR_DIR": str(work / "var"),
            "GATEWAY_SMTP_PORT": str(smtp_port),
            "GATEWAY_WEB_PORT": str(free_port()),
            "GATEWAY_INTAKE_ADDRESSES": INTAKE,
            "GATEWAY_OUTBOUND_URL": f"smtp://127.0.0.1:{sink_port}?tls=none",
            "GATEWAY_SECRET_KEY": "bench",
            # one sender sends thousands of mails here: lift the limits meant for loops and floods
            "GATEWAY_AUTOREPLY_PER_HOUR": "1000000",
            "GATEWAY_AUTOREPLY_PER_DAY": "1000000",
            "GATEWAY_SMTP_SENDER_RATE": "1000000",
            "PYTHONUNBUFFERED": "1",
            **(extra or {}),
        }
    )
    cleanup: list[Any] = []
    if kind in ("pg", "pg-rabbitmq"):
        import psycopg

        name = f"gateway_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        env["GATEWAY_DATABASE_URL"] = POSTGRES_ADMIN.rsplit("/", 1)[0] + f"/{name}"
        if kind == "pg-rabbitmq":
            env["GATEWAY_BROKER_URL"] = RABBITMQ_URL
        cleanup.append(lambda: _drop_database(name))
    log_path = work / f"{kind}-{processes}.log"
    log = log_path.open("ab")
    cleanup.append(log.close)
    if kind == "forward":  # no gateway: the ceiling the benchmark's parties leave (forward.py)
        forward = Path(__file__).with_name("forward.py")
        argv = [str(smtp_port), str(sink_port), str(work / "forward.mbox")]
        started = [subprocess.Popen([sys.executable, str(forward), *argv], stdout=log, stderr=log)]
        wait_port(smtp_port)
        env["BENCH_SMTP_PORT"] = str(smtp_port)
        return Setup(kind, env, started, cleanup)
    gateway = [sys.executable, "-m", "cli"]
    subprocess.run([*gateway, "demo"], env=env, check=True, capture_output=True, timeout=120)
    # BENCH_WRAP runs the gateway under a profiler, e.g. "py-spy record -o p.txt -f raw --"
    wrap = os.environ.get("BENCH_WRAP", "").split()
    several = ["--processes", str(processes)]
    if kind in ("embedded", "pg"):
        started = [
            subprocess.Popen([*wrap, *gateway, "run", *several], env=env, stdout=log, stderr=log)
        ]
    else:
        _purge_rabbitmq()
        started = [
            subprocess.Popen([*gateway, "smtp", *several], env=env, stdout=log, stderr=log),
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "dramatiq",
                    "workers.main",
                    "--processes",
                    "1",
                    "--threads",
                    "8",
                ],
                env=env,
                stdout=log,
                stderr=log,
            ),
        ]
    wait_port(smtp_port)
    wait_started(log_path, processes)
    env["BENCH_SMTP_PORT"] = str(smtp_port)
    return Setup(kind, env, started, cleanup)


def stop_gateway(setup: Setup) -> None:
    for process in setup.processes:
        process.send_signal(signal.SIGTERM)
    for process in setup.processes:
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
    for step in setup.cleanup:
        step()


def _drop_database(name: str) -> None:
    import psycopg

    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


def _purge_rabbitmq() -> None:
    from dramatiq.brokers.rabbitmq import RabbitmqBroker

    from gateway.outbound.outbox import QUEUES

    broker = RabbitmqBroker(url=RABBITMQ_URL)
    for queue in QUEUES:
        broker.declare_queue(queue)
    broker.flush_all()
    broker.close()


# --- measuring --------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure_gateway(kind: str, args: argparse.Namespace, work: Path) -> dict[str, float]:
    sink_port = free_port()
    arrivals: Any = mp.Queue()
    sink = start_server(_sink, sink_port, arrivals)
    settings = dict(item.split("=", 1) for item in args.set)
    setup = start_gateway(kind, sink_port, work, args.processes, settings)
    port = int(setup.env["BENCH_SMTP_PORT"])
    try:
        send(port, 20, 2)  # warm-up: imports, connections, first SRs
        drain(arrivals, quiet=2.0)
        parties = {
            "gateway": [p.pid for p in setup.processes],
            "sink": [sink.process.pid or 0],
            "postgres": postgres_pids() if kind != "embedded" else [],
        }
        before = {name: cpu_seconds(pids) for name, pids in parties.items()}
        machine, clients = busy_seconds(), list[float]()
        results = send(port, args.count, args.clients, cpu=clients)
        accepted = {m: (b, e) for m, b, e, code in results if code == 250}
        # each new SR sends two mails: the acknowledgement and the SOC's copy (R2.1)
        acks, copies = collect(arrivals, set(accepted), args.timeout, others=len(accepted))
        used = {name: cpu_seconds(pids) - before[name] for name, pids in parties.items()}
        used["clients"], used["machine"] = sum(clients), busy_seconds() - machine
        first = min(b for b, _ in accepted.values())
        last_ack = max(acks.values()) if acks else float("nan")
        last_mail = max([last_ack, *copies])
        last_250 = max(e for _, e in accepted.values())
        figures = {
            "sent": float(len(results)),
            "accepted": float(len(accepted)),
            "acked": float(len(acks)),
            "intake_rate": len(accepted) / (last_250 - first),
            "rate": len(acks) / (last_ack - first),
            "copies": float(len(copies)),
            "all_rate": len(accepted) / (last_mail - first),
            **{f"cpu_{name}": seconds / max(1, len(accepted)) for name, seconds in used.items()},
        }
        drain(arrivals)  # the SOC's notifications of the burst are still on their way
        paced = send(port, int(args.rate * args.duration), args.clients, rate=args.rate)
        paced_ok = {m: e for m, _, e, code in paced if code == 250}
        paced_acks, _ = collect(arrivals, set(paced_ok), args.timeout)
        latencies = [paced_acks[m] - paced_ok[m] for m in paced_acks]
        figures.update(
            {
                "paced_acked": float(len(paced_acks)),
                "paced_sent": float(len(paced)),
                "p50": percentile(latencies, 0.50) if latencies else float("nan"),
                "p99": percentile(latencies, 0.99) if latencies else float("nan"),
            }
        )
        return figures
    finally:
        stop_gateway(setup)
        sink.close()


def measure_bare(args: argparse.Namespace, work: Path) -> dict[str, float]:
    port = free_port()
    server = start_server(_bare, port, str(work / "bare.mbox"))
    try:
        send(port, 20, 2)
        before, clients = cpu_seconds([server.process.pid or 0]), list[float]()
        results = send(port, args.count, args.clients, cpu=clients)
        ok = [(b, e) for _, b, e, code in results if code == 250]
        return {
            "rate": len(ok) / (max(e for _, e in ok) - min(b for b, _ in ok)),
            "cpu_server": (cpu_seconds([server.process.pid or 0]) - before) / len(ok),
            "cpu_clients": sum(clients) / len(ok),
        }
    finally:
        server.close()


def print_cpu(figures: dict[str, float]) -> None:
    """CPU ms per mail of each party, and the rate the machine's cores allow at that cost."""
    parties = {k[4:]: v for k, v in figures.items() if k.startswith("cpu_") and k != "cpu_machine"}
    shown = [f"{name} {seconds * 1000:.2f}" for name, seconds in parties.items() if seconds]
    print(f"  CPU ms per mail: {', '.join(shown)}")
    total = sum(parties.values())
    print(
        f"  all parties {total * 1000:.2f} ms a mail: {os.cpu_count()} cores allow at most "
        f"{(os.cpu_count() or 1) / total:.0f} mails/s"
    )
    if "cpu_machine" in figures:
        print(f"  the whole machine was busy {figures['cpu_machine'] * 1000:.2f} ms a mail")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--setups", default="embedded,pg-rabbitmq")
    parser.add_argument("--count", type=int, default=2000, help="mails in the throughput run")
    parser.add_argument("--clients", type=int, default=8, help="parallel SMTP connections")
    parser.add_argument("--rate", type=float, default=50.0, help="mails/s in the latency run")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of the latency run")
    parser.add_argument("--timeout", type=float, default=300.0, help="longest wait for acks")
    parser.add_argument(
        "--processes", type=int, default=1, help="listener processes (gateway --processes N)"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for the gateway's processes, e.g. GATEWAY_SMTP_WORKERS=4 (repeatable)",
    )
    args = parser.parse_args()
    for item in args.set:
        if "=" not in item or not item.partition("=")[0]:
            parser.error(f"--set {item!r}: give NAME=VALUE, e.g. GATEWAY_SMTP_WORKERS=2")
    work = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    print(
        f"{os.cpu_count()} cores; {args.count} mails of {len(make_mail('<x@y>'))} bytes from "
        f"{args.clients} clients; latency at {args.rate:g} mails/s for {args.duration:g} s; "
        f"{args.processes} listener process(es)"
    )
    try:
        yardstick = measure_bare(args, work)
        bare = yardstick["rate"]
        print(f"\nbare aiosmtpd + fsync per mail: {bare:7.1f} mails/s")
        print_cpu(yardstick)
        for kind in args.setups.split(","):
            f = measure_gateway(kind, args, work)
            print(f"\n{kind}:")
            print(
                f"  accepted {f['accepted']:.0f}/{f['sent']:.0f}, acknowledged {f['acked']:.0f}, "
                f"SOC copies {f['copies']:.0f}"
            )
            print(f"  intake (250s)            {f['intake_rate']:7.1f} mails/s")
            print(
                f"  all acks delivered       {f['rate']:7.1f} mails/s   "
                f"= {f['rate'] / bare:.2f} x bare"
            )
            print(
                f"  acks + SOC copies out    {f['all_rate']:7.1f} mails/s   "
                f"= {f['all_rate'] / bare:.2f} x bare"
            )
            print(
                f"  at {args.rate:g}/s: acked {f['paced_acked']:.0f}/{f['paced_sent']:.0f}, "
                f"latency 250 -> ack p50 {f['p50'] * 1000:.0f} ms, p99 {f['p99'] * 1000:.0f} ms"
            )
            print_cpu(f)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    mp.set_start_method("fork")
    main()
