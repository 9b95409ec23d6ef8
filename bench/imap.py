"""IMAP intake benchmark: mails already waiting in a mailbox, until every acknowledgement went out.

It starts a private Dovecot (as the tests start it: tests/support/dovecot.py), fills a fresh
mailbox with `--count` support mails from the demo contact (alice@example.com), starts an SMTP
sink standing in for the relay (aiosmtpd, its own process, as in bench/intake.py) and then the
gateway (`gateway imap`, in-process workers, on an embedded database of its own with the demo
directory loaded), and prints:

- mails/s from the process's start, and from the poller's first look at the mailbox (its log
  line "watching"; the first fetch follows at once), to the arrival of the last acknowledgement
  at the sink;
- the time from the process's start to the first acknowledgement's arrival;
- CPU ms per mail (all threads, from "watching" to the last acknowledgement) and the peak RSS.

Everything runs on loopback; every wait is bounded.

    python bench/imap.py
    python bench/imap.py --count 1000 --runs 3
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import re
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.intake import _sink, free_port, make_mail, start_server  # noqa: E402
from tests.support.dovecot import Dovecot  # noqa: E402  (the checkout's own test helpers)

WATCHING = re.compile(rb"IMAP \S+: watching")
APPEND_BATCH = 200  # mails per MULTIAPPEND (RFC 3502) while filling the mailbox


def fill(dovecot: Dovecot, count: int) -> tuple[str, set[str]]:
    """A fresh mailbox user with `count` mails in its INBOX; its URL and the Message-IDs."""
    from imapclient import IMAPClient
    from imapclient.exceptions import LoginError

    from gateway.edges.imap import parse_mailbox_url

    url = dovecot.add_user(f"bench{uuid.uuid4().hex[:8]}")
    box = parse_mailbox_url(url)
    ids = [f"<imap-bench-{uuid.uuid4().hex}@example.com>" for _ in range(count)]
    client = IMAPClient("127.0.0.1", port=box.port, ssl=False, timeout=60)
    deadline = time.monotonic() + 15
    while True:  # Dovecot re-reads its passwd-file when it notices the change
        try:
            client.login(box.username, box.password)
            break
        except LoginError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    for start in range(0, count, APPEND_BATCH):
        client.multiappend("INBOX", [make_mail(m) for m in ids[start : start + APPEND_BATCH]])
    waiting = int(client.folder_status("INBOX", [b"MESSAGES"])[b"MESSAGES"])
    client.logout()
    if waiting != count:
        raise RuntimeError(f"the mailbox holds {waiting} mails, not {count}")
    return url, set(ids)


def environment(work: Path, imap_url: str, sink_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: bytecode cached
    env.update(
        {
            "GATEWAY_CONFIG": str(work / "none.toml"),
            "GATEWAY_VAR_DIR": str(work / "var"),
            "GATEWAY_SMTP_PORT": str(free_port()),
            "GATEWAY_WEB_PORT": str(free_port()),
            "GATEWAY_IMAP_URL": imap_url,
            "GATEWAY_OUTBOUND_URL": f"smtp://127.0.0.1:{sink_port}?tls=none",
            "GATEWAY_SECRET_KEY": "bench",
            # one sender sends thousands of mails here: lift the limits meant for loops and floods
            "GATEWAY_AUTOREPLY_PER_HOUR": "1000000",
            "GATEWAY_AUTOREPLY_PER_DAY": "1000000",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def _cpu(pid: int) -> float:
    """CPU seconds (user and system, all threads) the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(dovecot: Dovecot, count: int, timeout: float) -> dict[str, float]:
    work = Path(tempfile.mkdtemp(prefix="gw-bench-imap-"))
    sink_port = free_port()
    arrivals: Any = mp.Queue()
    sink = start_server(_sink, sink_port, arrivals)
    try:
        url, wanted = fill(dovecot, count)
        env = environment(work, url, sink_port)
        gateway = [sys.executable, "-m", "cli"]
        subprocess.run([*gateway, "demo"], env=env, cwd=ROOT, check=True, capture_output=True)
        log = (work / "gateway.log").open("wb")
        # BENCH_WRAP runs the gateway under a profiler, e.g. "py-spy record -o p.txt -f raw --"
        wrap = os.environ.get("BENCH_WRAP", "").split()
        started = time.monotonic()
        proc = subprocess.Popen(
            [*wrap, *gateway, "imap"], env=env, cwd=ROOT, stdout=log, stderr=subprocess.PIPE
        )
        assert proc.stderr is not None
        pid = proc.pid
        try:
            watching, cpu_watching = _wait_watching(proc, log, started + timeout)
            got: dict[str, float] = {}
            deadline = started + timeout
            while len(got) < len(wanted) and time.monotonic() < deadline:
                _drain_stderr(proc, log)
                try:
                    at, in_reply_to = arrivals.get(timeout=0.2)
                except Exception:
                    if proc.poll() is not None:
                        break
                    continue
                if in_reply_to in wanted:
                    got.setdefault(in_reply_to, at)
            if wrap:  # the profiler's child: the gateway itself
                children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
                pid = int(children[0]) if children else pid
            cpu_end, rss = _cpu(pid), _peak_rss_mb(pid)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
            log.close()
        if not got:
            raise RuntimeError(f"no acknowledgement arrived; see {work / 'gateway.log'}")
        last, first = max(got.values()), min(got.values())
        return {
            "acked": float(len(got)),
            "from_start": len(got) / (last - started),
            "from_watching": len(got) / (last - watching),
            "watching": watching - started,
            "first_ack": first - started,
            "cpu_ms": (cpu_end - cpu_watching) * 1000 / len(got),
            "rss_mb": rss,
        }
    finally:
        sink.close()
        shutil.rmtree(work, ignore_errors=True)


def _drain_stderr(proc: subprocess.Popen[bytes], log: Any) -> bytes:
    assert proc.stderr is not None
    ready, _, _ = select.select([proc.stderr], [], [], 0)
    if not ready:
        return b""
    chunk = os.read(proc.stderr.fileno(), 65536)
    log.write(chunk)
    return chunk


def _wait_watching(proc: subprocess.Popen[bytes], log: Any, deadline: float) -> tuple[float, float]:
    """The moment the poller said it watches its mailbox, and the CPU seconds used by then."""
    assert proc.stderr is not None
    said = b""
    while time.monotonic() < deadline and proc.poll() is None:
        ready, _, _ = select.select([proc.stderr], [], [], 0.5)
        if not ready:
            continue
        chunk = os.read(proc.stderr.fileno(), 65536)
        now = time.monotonic()
        log.write(chunk)
        said += chunk
        if WATCHING.search(said):
            return now, _cpu(proc.pid)
    raise RuntimeError(f"gateway imap did not start watching: {said.decode()[-2000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1000, help="mails waiting in the mailbox")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=300.0, help="longest wait for acks")
    args = parser.parse_args()
    print(
        f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}; {args.count} mails of "
        f"{len(make_mail('<x@y>'))} bytes waiting in a Dovecot mailbox; `gateway imap`"
    )
    dovecot = Dovecot().start()
    results = []
    try:
        for _ in range(args.runs):
            f = measure(dovecot, args.count, args.timeout)
            results.append(f)
            print(
                f"  acknowledged {f['acked']:.0f}/{args.count}: "
                f"{f['from_start']:6.1f} mails/s from process start, "
                f"{f['from_watching']:6.1f} mails/s from the first fetch; "
                f"watching after {f['watching']:.2f} s, first ack after {f['first_ack']:.2f} s; "
                f"{f['cpu_ms']:.1f} CPU ms/mail; peak RSS {f['rss_mb']:.0f} MB"
            )
    finally:
        dovecot.stop()
    if len(results) > 1:
        for key, name in (("from_start", "from start"), ("from_watching", "from first fetch")):
            values = [r[key] for r in results]
            print(
                f"{name:<18} median {statistics.median(values):6.1f} mails/s "
                f"(lowest {min(values):.1f}, highest {max(values):.1f})"
            )


if __name__ == "__main__":
    mp.set_start_method("fork")
    main()
