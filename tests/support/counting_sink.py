"""A fast SMTP sink on raw asyncio that counts what each recipient received, for the fan-out
tests (aiosmtpd's sink is too slow for 10,000 mails). It offers PIPELINING (RFC 2920), as
Postfix does, which aiosmtpd does not.

It reads a mail's data in one call up to the final dot and records it only then: a client that
goes away before the dot has delivered nothing (RFC 5321 §4.1.1.4). `hold()` stops it answering
(it still reads), so that a test can kill a worker at a moment when every connection waits on
the relay: `quiet_in_data()` says no client is in the middle of a mail's data (has sent some of
it and not its final dot), counting what it sent that the sink has not read yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import re
import struct
import termios
import threading
import time
from collections import Counter
from collections.abc import Callable

from tests.support.sink import Received

_ADDRESS = re.compile(rb"<([^>]*)>")
END = b"\r\n.\r\n"


class CountingSink:
    def __init__(self, refuse: dict[str, bytes] | None = None) -> None:
        self.refuse = refuse or {}  # recipient -> the reply its RCPT gets instead of 250
        self.port = 0
        self.mails: list[Received] = []
        self.counts: Counter[str] = Counter()
        self.in_data = 0  # connections that sent some of a mail's data and not yet its final dot
        # connections given (or about to be given) a 354 whose data has not begun to be read
        self._awaiting: dict[asyncio.StreamWriter, asyncio.StreamReader] = {}
        self._cond = threading.Condition()
        self._loop = asyncio.new_event_loop()
        self._open: asyncio.Event | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def start(self) -> CountingSink:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(10)
        return self

    async def _listen(self) -> None:
        self._open = asyncio.Event()
        self._open.set()
        self._server = await asyncio.start_server(self._session, "127.0.0.1", 0, limit=2**26)
        self.port = self._server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        async def close() -> None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    # --- holding the answers ----------------------------------------------------------------

    def hold(self) -> None:
        assert self._open is not None
        self._loop.call_soon_threadsafe(self._open.clear)

    def release(self) -> None:
        assert self._open is not None
        self._loop.call_soon_threadsafe(self._open.set)

    def quiet_in_data(self) -> bool:
        """No client in the middle of a mail's data: none read in part, and none of the
        connections that had a 354 with data come that is not read yet (in the reader's buffer
        or the socket's). Looked at on the sink's own loop, so that nothing moves meanwhile."""

        async def look() -> bool:
            with self._cond:
                if self.in_data:
                    return False
            # StreamReader keeps what it read ahead in _buffer (no public way to ask)
            return not any(
                reader._buffer or _unread(writer) for writer, reader in self._awaiting.items()
            )

        return asyncio.run_coroutine_threadsafe(look(), self._loop).result(10)

    # --- waiting ----------------------------------------------------------------------------

    def wait_until(self, condition: Callable[[CountingSink], bool], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not condition(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"condition not met with {len(self.mails)} mails")
                self._cond.wait(min(left, 0.5))

    def received(self) -> int:
        with self._cond:
            return len(self.mails)

    # --- the protocol -----------------------------------------------------------------------

    async def _reply(self, writer: asyncio.StreamWriter, line: bytes) -> None:
        assert self._open is not None
        await self._open.wait()
        writer.write(line)
        await writer.drain()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        mail_from, rcpts = "", []
        self._writers.add(writer)
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError, OSError):
            await self._reply(writer, b"220 counting-sink ESMTP\r\n")
            while line := await reader.readline():
                verb = line[:4].upper()
                if verb == b"EHLO":
                    await self._reply(
                        writer, b"250-counting-sink\r\n250-PIPELINING\r\n250 8BITMIME\r\n"
                    )
                elif verb == b"MAIL":
                    found = _ADDRESS.search(line)
                    mail_from, rcpts = (found.group(1).decode() if found else ""), []
                    await self._reply(writer, b"250 OK\r\n")
                elif verb == b"RCPT":
                    found = _ADDRESS.search(line)
                    rcpt = found.group(1).decode().lower() if found else ""
                    if rcpt in self.refuse:
                        await self._reply(writer, self.refuse[rcpt])
                        continue
                    rcpts.append(rcpt)
                    await self._reply(writer, b"250 OK\r\n")
                elif verb == b"DATA" and not rcpts:  # RFC 2920 §3.1: a pipelined DATA too
                    await self._reply(writer, b"554 no valid recipients\r\n")
                elif verb == b"DATA":
                    await self._data(reader, writer, mail_from, rcpts)
                    mail_from, rcpts = "", []
                elif verb == b"QUIT":
                    await self._reply(writer, b"221 bye\r\n")
                    break
                else:  # HELO, RSET, NOOP
                    if verb == b"RSET":
                        mail_from, rcpts = "", []
                    await self._reply(writer, b"250 OK\r\n")
        self._writers.discard(writer)
        with contextlib.suppress(OSError, RuntimeError):
            writer.close()

    async def _data(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        mail_from: str,
        rcpts: list[str],
    ) -> None:
        # under way from its first byte, not from the 354: a client that sends several mails
        # side by side has its 354s while it still waits for another connection's reply
        self._awaiting[writer] = reader
        try:
            await self._reply(writer, b"354 go ahead\r\n")
            first = await reader.readexactly(1)
            with self._cond:
                self.in_data += 1
        finally:
            del self._awaiting[writer]
        try:
            data = first + await reader.readuntil(END[1:] if first == b"\r" else END)
        finally:
            with self._cond:
                self.in_data -= 1
                self._cond.notify_all()
        content = re.sub(rb"(?m)^\.\.", b".", data[: -len(END) + 2])
        with self._cond:
            self.mails.append(Received(mail_from, tuple(rcpts), content, time.monotonic()))
            self.counts.update(rcpts)
            self._cond.notify_all()
        await self._reply(writer, b"250 OK queued\r\n")


def _unread(writer: asyncio.StreamWriter) -> int:
    """Bytes the peer sent that wait in the socket (FIONREAD), 0 once it is closed."""
    sock = writer.get_extra_info("socket")
    if sock is None or sock.fileno() < 0:
        return 0
    try:
        raw = fcntl.ioctl(sock.fileno(), termios.FIONREAD, struct.pack("i", 0))
    except OSError:
        return 0
    return int(struct.unpack("i", raw)[0])
