"""Step 3, what a bounce or a feedback report says of the mail it returns (R4.4): each
recipient's action and status (RFC 3464 §2.3), so that a failure for good is told from one that
is only delayed; and the returned mail's Message-ID and envelope sender as the report quotes
them (RFC 3464's text/rfc822-headers, RFC 5965's message/rfc822 and Original-Mail-From, an
MTA's "copy of the message"). Pure, and never raises.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email import message_from_bytes
from email.message import Message

from parsers.dsn import MAX_PARTS

BODY_LIMIT = 256 * 1024  # bytes of a report's body searched for what it quotes
# RFC 3464 §2: the delivery-status part comes before the returned mail; what lies beyond this
# is the returned mail's body and files, never parsed again here.
STATUS_LIMIT = 1024 * 1024
MAX_QUOTED = 20
_STATUS_TYPES = ("message/delivery-status", "message/global-delivery-status")
_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(<[^<>\s]{3,250}>)", re.IGNORECASE | re.MULTILINE)
# Where a report names the returned mail's envelope sender (a bulletin's VERP return path):
# the returned header's Return-Path, ARF's Original-Mail-From (RFC 5965 §3.2), Postfix's own.
_SENDER = re.compile(
    rb"^(?:Return-Path|Original-Mail-From|X-Postfix-Sender|X-Original-Sender)"
    rb":[ \t]*(?:rfc822;)?[ \t]*<?([^<>\s@]{1,200}@[^<>\s]{1,200}?)>?[ \t]*\r?$",
    re.IGNORECASE | re.MULTILINE,
)
_HEADER_END = re.compile(rb"\r?\n\r?\n")


@dataclass(frozen=True)
class RecipientStatus:
    """One recipient's block of a DSN (RFC 3464 §2.3)."""

    recipient: str
    action: str  # failed | delayed | delivered | relayed | expanded
    status: str  # RFC 3463: 5.x.x permanent, 4.x.x persistent transient
    diagnostic: str

    @property
    def permanent(self) -> bool:
        """Failed for good: `Action: failed` and no 4.x.x status (RFC 3464 §2.3.3, RFC 3463)."""
        return self.action == "failed" and not self.status.startswith("4")


@dataclass(frozen=True)
class Returned:
    """What a report says of the mail it returns."""

    statuses: tuple[RecipientStatus, ...] = ()
    message_ids: tuple[str, ...] = ()  # of the returned mail, as its quoted header gives them
    senders: tuple[str, ...] = ()  # the returned mail's envelope sender, as the report names it

    @property
    def only_delayed(self) -> bool:
        """A DSN none of whose recipients failed for good: the MTA is still trying (RFC 3464
        `Action: delayed`), or gave up on a 4.x.x status."""
        return bool(self.statuses) and not any(s.permanent for s in self.statuses)

    def failure(self) -> str:
        """The first permanent failure as a line for the record: `5.1.1 smtp; 550 …`."""
        for status in self.statuses:
            if status.permanent:
                return f"{status.status} {status.diagnostic}".strip()[:500]
        return ""


def read_returned(raw: bytes) -> Returned:
    """What the report `raw` says of its returned mail; empty for anything else."""
    try:
        return _read(raw)
    except Exception:  # the promise of the parsers: bad mail is data, never an exception
        return Returned()


def _read(raw: bytes) -> Returned:
    end = _HEADER_END.search(raw)
    body = raw[end.end() : end.end() + BODY_LIMIT] if end else b""
    ids = dict.fromkeys(m.decode("ascii", "replace") for m in _MESSAGE_ID.findall(body))
    senders = dict.fromkeys(
        s.decode("ascii", "replace").lower().strip(".") for s in _SENDER.findall(body)
    )
    statuses = _statuses(message_from_bytes(raw[:STATUS_LIMIT]))
    return Returned(statuses, tuple(ids)[:MAX_QUOTED], tuple(s for s in senders if s)[:MAX_QUOTED])


def _statuses(message: Message) -> tuple[RecipientStatus, ...]:
    found: list[RecipientStatus] = []
    for seen, part in enumerate(message.walk()):
        if seen >= MAX_PARTS:
            break
        if part.get_content_type() in _STATUS_TYPES:
            found += _recipients(_blocks(part))
    return tuple(found[:MAX_QUOTED])


def _blocks(part: Message) -> list[dict[str, str]]:
    """The field blocks of a delivery-status part: the per-message block, then one per
    recipient. The email package splits message/delivery-status itself; the global form
    (RFC 6533) stays text and is split here."""
    payload = part.get_payload()
    if isinstance(payload, list):
        blocks = [block for block in payload if isinstance(block, Message)]
        return [{k.lower(): _flat(str(v)) for k, v in block.items()} for block in blocks]
    data = part.get_payload(decode=True)
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(payload)
    return [_fields(block) for block in re.split(r"\r?\n[ \t]*\r?\n", text) if block.strip()]


def _fields(block: str) -> dict[str, str]:
    unfolded = re.sub(r"\r?\n[ \t]+", " ", block)
    pairs = (line.partition(":") for line in unfolded.splitlines())
    return {name.strip().lower(): _flat(value) for name, sep, value in pairs if sep}


def _recipients(blocks: list[dict[str, str]]) -> list[RecipientStatus]:
    found = []
    for block in blocks:
        recipient = block.get("final-recipient") or block.get("original-recipient") or ""
        if not recipient or "action" not in block:
            continue
        found.append(
            RecipientStatus(
                recipient=recipient.rpartition(";")[2].strip().strip("<>").lower(),
                action=block["action"].split()[0].lower() if block["action"] else "",
                status=(block.get("status", "").split() or [""])[0],
                diagnostic=block.get("diagnostic-code", "")[:400],
            )
        )
    return found


def _flat(value: str) -> str:
    return re.sub(r"\s+", " ", value).strip()
