"""Step 1, the SMTP edge's DATA: aiosmtpd's SMTP session, reading DATA in blocks (R6.6)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiosmtpd.smtp import MISSING, SMTP, syntax

from gateway.observe import metrics

log = logging.getLogger("gateway.intake.receive")  # where every mail's outcome is logged


class IntakeSMTP(SMTP):  # type: ignore[misc]
    """aiosmtpd's SMTP, reading DATA lines of any length up to the message size limit (R6.6).

    aiosmtpd refuses a DATA line over 1,000 bytes (RFC 5321 §4.5.3.1.6) with a permanent 500,
    which the sending MTA turns into a bounce; real mail has such lines (JSON notifications, long
    headers, HTML on one line, unwrapped base64) and MTAs such as Postfix accept them. The reader
    is therefore allowed lines up to the size limit. Command lines stay limited: aiosmtpd checks
    each against `command_size_limit` after reading it (500 beyond; the reader holds at most what
    it may hold of a DATA line meanwhile). Lines are what SMTP calls lines, ended by CRLF (RFC
    5321 §2.3.8): a bare CR or LF is content, kept as sent; the end of DATA is CRLF.CRLF only (no
    "SMTP smuggling" with <LF>.<LF>), and a dot is unstuffed only at the start of a CRLF line
    (§4.5.2).
    """

    def __init__(self, handler: Any, *, data_size_limit: int, **kwargs: Any) -> None:
        # Read by SMTP.__init__ for the StreamReader's limit, and by smtp_DATA for each line.
        self.line_length_limit = max(data_size_limit, SMTP.line_length_limit)
        super().__init__(handler, data_size_limit=data_size_limit, **kwargs)

    @syntax("DATA")  # type: ignore[untyped-decorator]
    async def smtp_DATA(self, arg: str) -> None:
        """aiosmtpd's DATA, read in blocks instead of line by line (see `read_content`)."""
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        content = await read_content(self._reader, self.data_size_limit)
        if content is None:
            await self.push("552 Error: Too much mail data")
            self._set_post_data_state()
            return
        self.envelope.content = self.envelope.original_content = content
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push("250 OK" if status is MISSING else status)

    async def push(self, status: str | bytes) -> None:
        # A DATA line beyond the reader's limit is longer than the message size limit: the mail
        # is too big, and RFC 1870 §6 asks for 552 whatever the shape of its lines.
        if isinstance(status, str) and status.startswith("500 Line too long"):
            status = "552 Error: Too much mail data"
        if isinstance(status, str) and status.startswith("552"):  # aiosmtpd's own size refusals
            metrics.refused(552)
            # R6.3: a clear, logged outcome, as each mail taken or deferred has
            log.info(
                "refused 552 from %s, MAIL FROM <%s>: over the size limit of %s bytes",
                self.session.peer[0] if isinstance(self.session.peer, tuple) else self.session.peer,
                self.envelope.mail_from or "",
                self.data_size_limit,
            )
        await super().push(status)


DATA_BLOCK = 256 * 1024  # bytes taken from the connection at a time in DATA


async def read_content(reader: asyncio.StreamReader, limit: int | None) -> bytes | None:
    """The content of DATA, unstuffed; None when it is over `limit` (read to its end anyway).

    aiosmtpd reads DATA one line per await, keeps each line twice, and its reader's buffer grows
    with a line: a 30 MB mail took 400,000 awaits, and a 30 MB base64 attachment three copies at
    once. Here the connection is read in blocks, each looked through for the end of DATA: CRLF.CRLF
    only (RFC 5321 §4.1.1.4; a bare LF never ends it); a dot is unstuffed only at the start of a
    CRLF line (§4.5.2). What the client sent after the end (RFC 2920 pipelining) is given back
    to the reader, for the next command.
    """
    kept: list[bytes] = []
    size, too_much = 0, False
    before, carry = b"\r\n", b""  # DATA's first line starts a line
    while True:
        block = await reader.read(DATA_BLOCK)
        if not block:
            raise asyncio.IncompleteReadError(b"", None)  # the client went away during DATA
        seen = before + carry + block
        end = seen.find(b"\r\n.\r\n")
        stop = end + 2 if end >= 0 else max(len(before), len(seen) - 4)
        piece = seen[len(before) : stop]  # the end of DATA may begin in the last four bytes
        size += len(piece)
        if not too_much and limit and size > limit:
            too_much, kept = True, []
        if not too_much:
            kept.append(unstuff(before, piece))
        if end >= 0:
            _give_back(reader, seen[end + 5 :])
            return None if too_much else b"".join(kept)
        before, carry = (before + piece)[-2:], seen[stop:]


def unstuff(before: bytes, piece: bytes) -> bytes:
    """RFC 5321 §4.5.2: the first dot of each line that starts with one is the sender's.
    `before` are the two bytes of the stream before `piece`."""
    joined = before + piece
    if b"\r\n." not in joined:
        return piece
    return joined.replace(b"\r\n.", b"\r\n")[len(before) :]


def _give_back(reader: asyncio.StreamReader, data: bytes) -> None:
    # StreamReader has no unread; its buffer is where the next readuntil looks first.
    if data:
        buffer: bytearray = reader._buffer  # type: ignore[attr-defined]
        buffer[0:0] = data
