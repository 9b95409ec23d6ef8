"""Step 3, machine reports: is a mail a bounce (RFC 3464 DSN or an MTA's own wording),
a feedback report (RFC 5965 ARF) or a read receipt (RFC 8098 MDN), and which recipients failed.

Read from the `email.message.Message` while the mail is parsed; pure, and never raises.
"""

from __future__ import annotations

import logging
import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses

from parsers.wordings import ADDRESS, BOUNCE_SUBJECT, DAEMON, FAILED_LINES, SYSTEM_SENDER, WORDINGS

# flufl.bounce logs every detector it runs at INFO, once per mail: noise in the gateway's log.
logging.getLogger("flufl.bounce").setLevel(logging.WARNING)

MAX_PARTS = 500  # as parsers.mail: a report is found in the first parts, or not at all
MAX_DEPTH = 20
TEXT_LIMIT = 20_000  # characters of the mail's own text read for an MTA's wording
MAX_FAILED = 100  # failed recipients kept for one bounce


@dataclass(frozen=True)
class Report:
    """What a machine-made report says it is."""

    kind: str  # bounce | feedback | receipt | report (a multipart/report of another type)
    reason: str  # why, as the stored mail's reason says it
    failed: tuple[str, ...] = ()  # recipients reported as failed for good (bounces)
    delayed: tuple[str, ...] = ()  # recipients only delayed: the MTA still tries (R4.4)


# MIME types of the machine-readable part of a report (RFC 6522 §3), and what it makes the mail.
# RFC 6522: a multipart/report's report-type names its second part; both count, anywhere in the
# mail's own MIME tree (a wrapper such as a disclaimer's multipart/mixed does not hide them), but
# never inside an attached message/rfc822: a forwarded bounce is a person's question about it.
REPORT_PARTS: dict[str, tuple[str, str]] = {
    "message/delivery-status": ("bounce", "delivery status notification (RFC 3464)"),
    "message/global-delivery-status": ("bounce", "delivery status notification (RFC 6533)"),
    "message/feedback-report": ("feedback", "ARF feedback report (RFC 5965)"),
    "message/disposition-notification": ("receipt", "MDN read receipt (RFC 8098)"),
    "message/global-disposition-notification": ("receipt", "MDN read receipt (RFC 6533)"),
}
# RFC 6522 §3: a report-type is the subtype of the report's machine-readable part.
REPORT_TYPES: dict[str, str] = {name.partition("/")[2]: name for name in REPORT_PARTS}
_PRECEDENCE = ("bounce", "feedback", "receipt")  # when one mail carries more than one kind
# A report whose machine-readable part is missing is named by its kind (the first name of each).
_KIND_NAMES = dict(reversed(REPORT_PARTS.values())) | {"report": "a multipart/report (RFC 6522)"}


def read_report(message: Message) -> Report | None:
    """The report a mail is, or None for mail no machine reported with. Never raises."""
    try:
        return _report(message)
    except Exception:  # the unforeseen in this module must not cost the mail its parse
        return None


def failed_recipients(report: Report | None) -> list[str] | None:
    """What the stored mail keeps of a bounce for suspending addresses; None when no bounce."""
    return list(report.failed) if report is not None and report.kind == "bounce" else None


def _report(message: Message) -> Report | None:
    kind = _structural(message)
    if kind is not None and kind != "bounce":
        return Report(kind, _describe(message, kind))
    reason = _describe(message, kind) if kind else _declared(message)
    said_by = [] if reason else _said_by(message)
    if not reason and not said_by:  # a bounce needs one of these: the text is not read for nothing
        return None
    text = _text(message)
    written = [] if reason else _written(text)
    detected, delayed = _detected(message)
    failed = detected or _worded_failures(text)
    if not reason:
        written += ["failed recipients named"] if failed else []
        # One sign alone is how a person writes about a bounce: a bounce's sender or subject
        # and, in its text, an MTA's wording or the recipients that failed.
        if not (said_by and written):
            return None
        reason = f"known by {', '.join(said_by + written)}"
    return Report("bounce", reason, failed, delayed)


def _detected(message: Message) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The recipients flufl.bounce's detectors find (RFC 3464 and MTAs): failed for good, and
    only delayed (a warning; scored never, R4.4)."""
    try:
        temporary, permanent = all_failures(_for_detectors(message))
    except Exception:  # a detector's bug on a hostile mail: the bounce stays one, unnamed
        return (), ()
    return _addresses(permanent), _addresses(temporary)


def all_failures(message: Message) -> tuple[frozenset[bytes], frozenset[bytes]]:
    """flufl.bounce's `all_failures` (temporary, permanent), imported for the first mail that
    looks like a bounce rather than at every start (tens of milliseconds)."""
    from flufl.bounce import all_failures as detect

    return detect(message)


def _for_detectors(message: Message) -> Message:
    """The mail as flufl.bounce is given it: its header, its own text and report parts, each
    cut to TEXT_LIMIT; not the returned original or files. Its heuristics would read every line
    of a 20 MB attachment (seconds of work, and addresses that did not fail)."""
    if not message.is_multipart():
        return _cut(message)
    kept: list[Message | str] = [
        part if part.is_multipart() else _cut(part)
        for part in _own_parts(message)
        if part.get_content_type() in REPORT_PARTS
        or (part.get_content_maintype() == "text" and not part.is_multipart())
    ]
    return _with_payload(message, kept)


def _cut(part: Message) -> Message:
    payload = part.get_payload()
    if not isinstance(payload, str) or len(payload) <= TEXT_LIMIT:
        return part
    return _with_payload(part, payload[:TEXT_LIMIT])


def _with_payload(part: Message, payload: list[Message | str] | str) -> Message:
    """A new part with `part`'s header and another payload: the parsed mail is never changed."""
    copy = Message()
    for key, value in part.raw_items():
        copy[key] = value
    copy.set_payload(payload)
    return copy


def _declared(message: Message) -> str:
    """Why the mail is a bounce by its own header, or "" (RFC 5321 §4.5.5, Exim's header)."""
    if DAEMON.match(_sender(message)[0]):
        return "mail from a mailer daemon"
    if "x-failed-recipients" in message:
        return "mail from a mail system (X-Failed-Recipients)"
    return ""


def _structural(message: Message) -> str | None:
    """The kind of report the MIME structure declares, by RFC 6522 and its report types."""
    found: set[str] = set()
    for part in _own_parts(message):
        content_type = part.get_content_type()
        if content_type == "multipart/report":
            report_type = str(part.get_param("report-type", "") or "").lower()
            inner = REPORT_TYPES.get(report_type)
            found.add(REPORT_PARTS[inner][0] if inner else "report")
        elif content_type in REPORT_PARTS:
            found.add(REPORT_PARTS[content_type][0])
    for kind in _PRECEDENCE:
        if kind in found:
            return kind
    return "report" if found else None


def _describe(message: Message, kind: str) -> str:
    """The reason, with what the machine-readable part says (feedback type, disposition)."""
    field = {"feedback": "Feedback-Type", "receipt": "Disposition"}.get(kind, "")
    for part in _own_parts(message):
        if REPORT_PARTS.get(part.get_content_type(), ("",))[0] == kind:
            base = REPORT_PARTS[part.get_content_type()][1]
            value = _field(part, field) if field else ""
            return f"{base}, {field}: {value}" if value else base
    return _KIND_NAMES[kind]


def _field(part: Message, name: str) -> str:
    """A field of a report's machine-readable part (header blocks, RFC 5965 §3.1, RFC 8098 §3)."""
    payload = part.get_payload()
    blocks = payload if isinstance(payload, list) else []
    for block in blocks:
        if isinstance(block, Message) and block.get(name):
            return re.sub(r"\s+", " ", str(block.get(name))).strip()[:100]
    if isinstance(payload, str):
        found = re.search(rf"^{name}:\s*(.+)$", payload, re.I | re.M)
        return found.group(1).strip()[:100] if found else ""
    return ""


def _sender(message: Message) -> tuple[str, str]:
    """(local part or bare word, display name) of the From; a From without a domain counts."""
    value = _decoded(message.get("from", ""))
    pairs = getaddresses([value])
    name, addr = pairs[0] if pairs else ("", "")
    local = addr.rpartition("@")[0] if "@" in addr else addr
    return local.strip('"').strip(), name.strip()


def _said_by(message: Message) -> list[str]:
    """The signs of a bounce in who and what a mail says it is: its sender, subject, header."""
    local, name = _sender(message)
    said_by = []
    if SYSTEM_SENDER.match(local) or SYSTEM_SENDER.match(name):
        said_by.append("a mail system's sender")
    if BOUNCE_SUBJECT.match(_decoded(message.get("subject", ""))):
        said_by.append("a bounce's subject")
    if "x-mlserver" in message or "x-ml-server" in message:
        said_by.append("a list manager's header")  # fml and its kin answer a refused post
    return said_by


def _written(text: str) -> list[str]:
    """The sign of a bounce in an MTA's own words: the first MTA whose wording its text has."""
    return [f"{who}'s wording" for who, wording in WORDINGS if wording.search(text)][:1]


def _worded_failures(text: str) -> tuple[str, ...]:
    """Failed recipients as the MTAs flufl.bounce has no detector for name them."""
    found: list[str] = []
    for pattern in FAILED_LINES:
        for block in pattern.findall(text):
            found += [m.lower() for m in ADDRESS.findall(block)]
    return tuple(dict.fromkeys(found))[:MAX_FAILED]


def _addresses(values: frozenset[bytes]) -> tuple[str, ...]:
    """flufl.bounce's byte addresses, as text, lower-cased, sorted; what is no address dropped."""
    texts = {v.decode("ascii", "replace").strip().strip("<>").lower() for v in values}
    return tuple(sorted(t for t in texts if ADDRESS.fullmatch(t)))[:MAX_FAILED]


def _own_parts(message: Message) -> Iterator[Message]:
    """Every part of the mail's own MIME tree, not those of a message it attaches or returns."""
    waiting = deque([(message, 0)])
    seen = 0
    while waiting and seen < MAX_PARTS:
        part, depth = waiting.popleft()
        seen += 1
        yield part
        if depth >= MAX_DEPTH or not part.is_multipart():
            continue
        if part.get_content_type().startswith("message/"):
            continue  # a returned original, a report's header blocks: not parts of this mail
        payload = part.get_payload()
        waiting.extend((p, depth + 1) for p in payload if isinstance(p, Message))


def _text(message: Message) -> str:
    """The mail's own plain text (not an attached original), up to TEXT_LIMIT characters."""
    chunks: list[str] = []
    size = 0
    for part in _own_parts(message):
        attached = part.get_content_disposition() == "attachment"
        if part.get_content_type() != "text/plain" or attached:
            continue
        data = part.get_payload(decode=True)
        if not isinstance(data, bytes):
            continue
        chunk = _decode(data[:TEXT_LIMIT], part.get_content_charset() or "utf-8")
        chunks.append(chunk)
        size += len(chunk)
        if size >= TEXT_LIMIT:
            break
    return re.sub(r"[ \t]+", " ", "\n".join(chunks).replace("\r\n", "\n"))[:TEXT_LIMIT]


def _decoded(value: object) -> str:
    text = str(value)
    try:
        return str(make_header(decode_header(text)))
    except Exception:  # an undecodable header is read as it stands
        return text


def _decode(data: bytes, charset: str) -> str:
    try:
        return data.decode(charset, "replace")
    except LookupError:  # an unknown charset label
        return data.decode("utf-8", "replace")
