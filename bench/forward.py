"""The least any gateway does in bench/intake.py, with no gateway in it: the `forward` set-up.

An aiosmtpd server that appends each mail to a file and fsyncs it before its 250 (as the bare
yardstick does), then sends two mails for it to the relay over connections kept open, as the
gateway's workers do: an acknowledgement that answers it (In-Reply-To: its Message-ID, which is
how the benchmark knows it) and a copy of the mail itself (the SOC's). No parsing, no database,
no rendering: what it reaches is what the benchmark's parties (clients, sink, SMTP both ways,
one fsync a mail) allow on this machine, a ceiling for every real set-up.

    python bench/forward.py PORT RELAY_PORT FILE [THREADS]
"""

from __future__ import annotations

import os
import queue
import re
import signal
import smtplib
import sys
import threading
from typing import Any

from aiosmtpd.controller import Controller

MESSAGE_ID = re.compile(rb"^Message-ID:\s*(<[^>]+>)", re.MULTILINE | re.IGNORECASE)
INTAKE = "soc@securecall.example"
SOC = "soc-team@securecall.example"


def main() -> None:
    port, relay_port, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    threads = int(sys.argv[4]) if len(sys.argv) > 4 else 8
    out = open(path, "ab")  # noqa: SIM115 - lives as long as the process
    todo: queue.Queue[tuple[str, bytes] | None] = queue.Queue()

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            data = envelope.original_content or b""
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
            found = MESSAGE_ID.search(data)
            todo.put((envelope.mail_from, found.group(1) if found else b"<none@bench>"))
            todo.put((SOC, data))
            return "250 OK"

    def send() -> None:
        relay = smtplib.SMTP("127.0.0.1", relay_port, timeout=60)
        while (item := todo.get()) is not None:
            to, what = item
            if what.startswith(b"<"):  # a Message-ID: the acknowledgement of that mail
                what = (
                    b"From: " + INTAKE.encode() + b"\r\nTo: " + to.encode() + b"\r\n"
                    b"Subject: Received\r\nIn-Reply-To: " + what + b"\r\n\r\nReceived.\r\n"
                )
            relay.sendmail(INTAKE, [to], what)
        relay.quit()

    senders = [threading.Thread(target=send) for _ in range(threads)]
    for sender in senders:
        sender.start()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait(3600)
    controller.stop()
    for _ in senders:
        todo.put(None)
    for sender in senders:
        sender.join(30)


if __name__ == "__main__":
    main()
