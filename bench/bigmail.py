"""Large-mail benchmark: seconds and the gateway's peak memory for one 30 MB or 100 MB mail.

For each mode it starts the embedded gateway (`gateway run`, its own GATEWAY_VAR_DIR, the demo
directory, GATEWAY_MAX_MESSAGE_SIZE raised above the mail), an aiosmtpd sink standing in for the
relay, and sends one mail from alice@example.com to soc@securecall.example, then prints:

- the seconds from the start of DATA to the 250, and to the acknowledgement's arrival at the sink;
- the gateway process's peak RSS (VmHWM in /proc/PID/status) above its RSS when idle, and that
  as a multiple of the mail's size;
- the CPU seconds the gateway process spent (all threads, utime + stime in /proc/PID/stat) from
  the start of DATA to the 250: less moved by other work on the machine than the seconds.

Modes: `attachment` (a base64 application/octet-stream part) and `text` (one huge text/plain
body), each at the sizes given. Everything runs on loopback; each wait is bounded.

    python bench/bigmail.py                                  # 30 and 100 MB, attachment and text
    python bench/bigmail.py --sizes 30 --modes attachment
"""

from __future__ import annotations

import argparse
import base64
import multiprocessing as mp
import os
import random
import shutil
import smtplib
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.intake import (
    INTAKE,
    SENDER,
    Setup,
    _sink,
    collect,
    free_port,
    start_gateway,
    start_server,
    stop_gateway,
)

MB = 1024 * 1024
WORDS = ["tunnel", "phase", "renegotiation", "peer", "probe", "timeout", "gateway", "firewall"]


def make_mail(message_id: str, mode: str, size: int) -> bytes:
    """A mail of about `size` bytes: CRLF line ends, lines of 76 characters (RFC 2045 §6.8)."""
    head = (
        f"From: Alice Archer <{SENDER}>\r\nTo: SecureCall SOC <{INTAKE}>\r\n"
        f"Subject: Large mail ({mode})\r\nMessage-ID: {message_id}\r\n"
        "Date: Sat, 21 Nov 2026 10:00:00 +0100\r\nMIME-Version: 1.0\r\n"
    ).encode()
    if mode == "text":
        rng = random.Random(7)
        line = " ".join(rng.choice(WORDS) for _ in range(400)).encode()
        lines = [line[i : i + 74] + b"\r\n" for i in range(0, len(line) - 74, 74)]
        body = b"".join(lines) * (size // sum(map(len, lines)) + 1)
        return head + b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + body[:size] + b"\r\n"
    payload = base64.encodebytes(os.urandom(size * 3 // 4)).replace(b"\n", b"\r\n")
    return head + (
        b'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n--b1\r\n'
        b"Content-Type: text/plain; charset=utf-8\r\n\r\nThe capture is attached.\r\n--b1\r\n"
        b'Content-Type: application/octet-stream; name="capture.pcap"\r\n'
        b'Content-Disposition: attachment; filename="capture.pcap"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n" + payload + b"--b1--\r\n"
    )


def status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for {pid}")


def cpu_seconds(pid: int) -> float:
    """utime + stime of every thread of the process (proc(5): fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def reset_peak(pid: int) -> None:
    """Linux ≥ 4.0: writing 5 to clear_refs resets VmHWM to the current RSS."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def measure(setup: Setup, arrivals: Any, mode: str, size: int, timeout: float) -> dict[str, float]:
    pid = setup.processes[0].pid
    port = int(setup.env["BENCH_SMTP_PORT"])
    message_id = f"<bigmail-{uuid.uuid4().hex}@example.com>"
    mail = make_mail(message_id, mode, size)
    # smtplib.data() dot-stuffs the mail with a regular expression first (0.5 s at 100 MB, in
    # the client): done here, before the clock starts. make_mail ends the mail with CRLF.
    stuffed = smtplib.quotedata(mail.decode("latin-1")).encode("latin-1") + b".\r\n"
    client = smtplib.SMTP("127.0.0.1", port, timeout=timeout)
    client.ehlo("bench.example.com")
    client.mail(SENDER, [f"SIZE={len(mail)}"])
    client.rcpt(INTAKE)
    time.sleep(1.0)  # MAIL and RCPT are done: the gateway is idle again
    idle = status_kb(pid, "VmRSS")
    reset_peak(pid)
    samples: list[tuple[float, int]] = []
    done = threading.Event()
    sampler = threading.Thread(target=_sample, args=(pid, samples, done), daemon=True)
    began, cpu = time.monotonic(), cpu_seconds(pid)
    sampler.start()
    client.putcmd("data")
    code, _reply = client.getreply()
    if code == 354:
        client.send(stuffed)
        code, _reply = client.getreply()
    ended, cpu = time.monotonic(), cpu_seconds(pid) - cpu
    acks, _ = collect(arrivals, {message_id}, timeout, others=1)
    done.set()
    sampler.join()
    peak = status_kb(pid, "VmHWM")
    peak_at = max(samples, key=lambda s: s[1])[0] - began if samples else float("nan")
    if os.environ.get("BENCH_TIMELINE"):  # RSS above idle every 10 ms, to see which step grows
        print(" ".join(f"{t - began:.2f}:{(kb - idle) // 1024}" for t, kb in samples[::5]))
    client.quit()
    return {
        "bytes": float(len(mail)),
        "code": float(code),
        "to_250": ended - began,
        "cpu": cpu,
        "to_ack": (acks[message_id] - began) if message_id in acks else float("nan"),
        "idle_mb": idle / 1024,
        "above_mb": (peak - idle) / 1024,
        "ratio": (peak - idle) * 1024 / len(mail),
        "peak_at": peak_at,
    }


def _sample(pid: int, samples: list[tuple[float, int]], done: threading.Event) -> None:
    """VmRSS every 10 ms: when the peak was (after the 250: in the acknowledgement, SOC copy)."""
    while not done.wait(0.01):
        samples.append((time.monotonic(), status_kb(pid, "VmRSS")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="30,100", help="mail sizes in MB")
    parser.add_argument("--modes", default="attachment,text")
    parser.add_argument("--timeout", type=float, default=120.0, help="longest wait for the ack")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"{os.cpu_count()} cores; embedded gateway; one mail per run")
    print(
        f"{'mode':<11} {'MB':>6} {'code':>5} {'DATA->250':>10} {'DATA->ack':>10} "
        f"{'idle RSS':>9} {'peak above':>11} {'x mail':>7} {'peak at':>8} {'CPU->250':>9}"
    )
    for size in sizes:
        for mode in args.modes.split(","):
            work = Path(tempfile.mkdtemp(prefix="gateway-bigmail-"))
            (work / "none.toml").write_text("")
            arrivals: Any = mp.Queue()
            sink_port = free_port()
            sink = start_server(_sink, sink_port, arrivals)
            # the GATEWAY max message size setting, raised above the mail
            limit = {"GATEWAY_MAX_MESSAGE_SIZE": str((size + 10) * MB)}
            setup = start_gateway("embedded", sink_port, work, extra=limit)
            try:
                time.sleep(2.0)  # start-up work (clock, first queries) settles
                f = measure(setup, arrivals, mode, size * MB, args.timeout)
            finally:
                stop_gateway(setup)
                sink.close()
                if os.environ.get("BENCH_TIMELINE"):
                    print((work / "embedded.log").read_text()[-3000:])
                shutil.rmtree(work, ignore_errors=True)
            print(
                f"{mode:<11} {f['bytes'] / MB:6.1f} {f['code']:5.0f} {f['to_250']:9.2f}s "
                f"{f['to_ack']:9.2f}s {f['idle_mb']:7.0f}MB {f['above_mb']:9.0f}MB "
                f"{f['ratio']:6.1f}x {f['peak_at']:7.2f}s {f['cpu']:8.2f}s",
                flush=True,
            )


if __name__ == "__main__":
    mp.set_start_method("fork")
    main()
