"""Start-up benchmark: how long each command takes from the process's start.

For each command it prints the median (and the lowest and highest) of `--runs` runs, in seconds:

- `gateway config` and `gateway requests list` (on a current schema, a few SRs stored): until
  the process has ended;
- `gateway run` and `gateway imap`: until the process says the IMAP poller is watching its
  mailbox (a private Dovecot, as the tests start it: tests/support/dovecot.py), and for `run`
  also until the SMTP listener says it is listening.

Beside them it prints the floor each one stands on: a bare interpreter importing only the
libraries the command cannot run without (`requests list`: SQLAlchemy's ORM, pydantic-settings
and Typer; `run` and `imap` also aiosmtpd, Dramatiq and imapclient) and doing nothing else.

Each command is `python -m cli …` (what the `gateway` console script runs) from this checkout,
on an embedded database of its own. One run of each, not counted, first writes the bytecode
caches (a pip install writes them too). Everything runs on loopback; every wait is bounded.

    python bench/startup.py
    python bench/startup.py --runs 9
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import select
import signal
import smtplib
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.dovecot import Dovecot  # noqa: E402  (the checkout's own test helpers)
from tests.support.services import free_port  # noqa: E402

WATCHING = re.compile(r"IMAP \S+: watching")
LISTENING = re.compile(r"listening on 127\.0\.0\.1:\d+")
LIMIT = 60.0  # seconds any one command may take before the run is abandoned


def environment(var: Path, imap_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: bytecode cached
    env.update(
        GATEWAY_CONFIG="/nonexistent/gateway.toml",
        GATEWAY_VAR_DIR=str(var),
        GATEWAY_SMTP_PORT=str(free_port()),
        GATEWAY_WEB_PORT=str(free_port()),
        GATEWAY_IMAP_URL=imap_url,
        GATEWAY_AUTH_POLICY="none",
        PYTHONUNBUFFERED="1",
    )
    return env


def gateway(*args: str) -> list[str]:
    return [sys.executable, "-m", "cli", *args]


def until_exit(env: dict[str, str], *args: str) -> list[float]:
    """Seconds from start to exit of `gateway ARGS` (which must succeed), and the CPU seconds
    it used."""
    before = _children_cpu()
    start = time.perf_counter()
    subprocess.run(
        gateway(*args), env=env, cwd=ROOT, check=True, capture_output=True, timeout=LIMIT
    )
    return [time.perf_counter() - start, _children_cpu() - before]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _cpu(pid: int) -> float:
    """CPU seconds (user and system, all threads) the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def until_said(env: dict[str, str], args: tuple[str, ...], *marks: re.Pattern[str]) -> list[float]:
    """Seconds from start until each of `marks` appears in the log of `gateway ARGS`, then the
    CPU seconds it had used when the last did; then the process is stopped with SIGTERM, as an
    operator stops it."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        gateway(*args), env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    assert proc.stderr is not None
    seen: dict[re.Pattern[str], float] = {}
    cpu = 0.0
    log = b""
    try:
        while len(seen) < len(marks):
            left = start + LIMIT - time.perf_counter()
            if left <= 0 or proc.poll() is not None:
                raise RuntimeError(f"{args} did not say {marks}: {log.decode()[-2000:]}")
            ready, _, _ = select.select([proc.stderr], [], [], min(left, 1.0))
            if not ready:
                continue
            chunk = os.read(proc.stderr.fileno(), 65536)
            now = time.perf_counter()
            log += chunk
            for mark in marks:
                if mark not in seen and mark.search(log.decode(errors="replace")):
                    seen[mark] = now - start
                    cpu = _cpu(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=LIMIT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
    return [*(seen[mark] for mark in marks), cpu]


def store_requests(env: dict[str, str], count: int) -> None:
    """A few SRs for `requests list` to show: mails from the demo contact, through `run`."""
    port = int(env["GATEWAY_SMTP_PORT"])
    proc = subprocess.Popen(
        gateway("run", "--demo"),
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    try:
        deadline = time.monotonic() + LIMIT
        while not LISTENING.search(proc.stderr.readline()):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("gateway run did not start")
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            for n in range(count):
                client.sendmail(
                    "alice@example.com",
                    ["soc@securecall.example"],
                    f"From: alice@example.com\r\nTo: soc@securecall.example\r\n"
                    f"Subject: VPN tunnel {n} down\r\n\r\nThe tunnel is down.\r\n".encode(),
                )
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=LIMIT)


# What each command imports before it can do anything (the floor beneath its figure)
FLOORS = {
    "requests list": "import sqlalchemy.orm, pydantic_settings, typer",
    "run, imap": "import sqlalchemy.orm, pydantic_settings, typer, aiosmtpd.smtp, dramatiq, "
    "imapclient",
}


def floor(env: dict[str, str], imports: str) -> list[float]:
    """Seconds from start to exit of an interpreter that only runs `imports`, and its CPU."""
    before = _children_cpu()
    start = time.perf_counter()
    argv = [sys.executable, "-c", imports]
    subprocess.run(argv, env=env, cwd=ROOT, check=True, capture_output=True, timeout=LIMIT)
    return [time.perf_counter() - start, _children_cpu() - before]


def figures(runs: int, measure: Callable[[], list[float]]) -> list[list[float]]:
    measure()  # not counted: writes the bytecode caches
    return [list(column) for column in zip(*(measure() for _ in range(runs)), strict=True)]


def show(name: str, samples: list[float], cpu: list[float]) -> None:
    print(
        f"{name:<30} median {statistics.median(samples):.3f} s"
        f" (lowest {min(samples):.3f}, highest {max(samples):.3f}, {len(samples)} runs);"
        f" CPU median {statistics.median(cpu):.3f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    dovecot = Dovecot().start()
    try:
        with tempfile.TemporaryDirectory(prefix="gw-startup-") as work:
            env = environment(Path(work) / "var", dovecot.url)
            until_exit(env, "migrate")  # first use: the schema is made
            store_requests(env, 3)
            imap_env = {**env, "GATEWAY_IMAP_URL": dovecot.add_user("imapalone")}
            load = os.getloadavg()[0]
            config = figures(args.runs, lambda: until_exit(env, "config"))
            listed = figures(args.runs, lambda: until_exit(env, "requests", "list"))
            run_watching, run_listening, run_cpu = figures(
                args.runs, lambda: until_said(env, ("run",), WATCHING, LISTENING)
            )
            imap_watching, imap_cpu = figures(
                args.runs, lambda: until_said(imap_env, ("imap",), WATCHING)
            )
            floors = {
                name: figures(args.runs, lambda imports=imports: floor(env, imports))
                for name, imports in FLOORS.items()
            }
    finally:
        dovecot.stop()
    print(f"load average (1 min) at the start: {load:.2f}, at the end: {os.getloadavg()[0]:.2f}")
    show("gateway config", *config)
    show("gateway requests list", *listed)
    show("gateway run: SMTP listening", run_listening, run_cpu)
    show("gateway run: IMAP watching", run_watching, run_cpu)
    show("gateway imap: IMAP watching", imap_watching, imap_cpu)
    for name, (seconds, cpu) in floors.items():
        show(f"floor of {name}", seconds, cpu)
    for name, imports in FLOORS.items():
        print(f"  floor of {name}: python -c '{imports}'")


if __name__ == "__main__":
    main()
