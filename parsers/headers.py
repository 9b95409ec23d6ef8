"""Step 3, the header of a mail: its fields read as text (RFC 2047, raw 8-bit bytes), the
fields later steps read, and the limits that keep hostile headers from costing minutes."""

from __future__ import annotations

import re
from collections.abc import Mapping
from email.message import Message
from email.utils import getaddresses
from functools import partial

from parsers import words
from parsers.parts import body_charset

# Headers the later steps read (RFC 3834 auto-reply signals, RFC 2369 list headers, loop markers).
SIGNAL_HEADERS = (
    "auto-submitted",
    "precedence",
    "list-id",
    "list-unsubscribe",
    "list-post",
    "x-auto-response-suppress",
    "x-autoreply",
    "x-autorespond",
    "x-auto-reply",
    "x-precedence",
    "x-loop",
    "return-path",
    "x-failed-recipients",
    "feedback-type",
)
MAX_FIELD_BYTES = 8 * 1024  # one header field, unfolded: longer ones are cut for parsing
MAX_HEADER_BYTES = 256 * 1024  # a header block larger than this is not parsed (quarantine)
MAX_HEADER_LINE = 998  # RFC 5322 §2.1.1: a longer header line is a defect, never a refusal
_LINE_END = re.compile(rb"\r\n|\r|\n")  # as the email package reads them


def header_size(raw: bytes) -> int:
    """Where the header block ends, looked for no further than just past the limit."""
    window = MAX_HEADER_BYTES + 4
    ends = [i for i in (raw.find(b"\r\n\r\n", 0, window), raw.find(b"\n\n", 0, window)) if i >= 0]
    return min(ends) if ends else len(raw)


def header_block(raw: bytes) -> bytes:
    """The header block and the empty line after it: what a header-only parser needs to see
    (given the whole mail, the standard library's copies the body, twice, as its payload)."""
    return raw[: header_size(raw) + 4]


def bounded_fields(raw: bytes) -> tuple[bytes, list[str]]:
    """The mail with each long field of encoded words cut to MAX_FIELD_BYTES, for parsing; and
    the defect.

    The standard library's RFC 2047 decoder, which mail-parser runs on every header field, takes
    time that grows with the square of a field full of unfinished encoded words: a 240 kB
    subject took minutes. No real field of encoded words comes near the bound (a long References
    field has none and is left whole); the stored mail keeps what arrived.
    """
    end = header_size(raw)
    if end <= MAX_FIELD_BYTES:
        return raw, []
    fields: list[bytes] = []
    for line in raw[:end].splitlines(keepends=True):
        if fields and line[:1] in (b" ", b"\t"):
            fields[-1] += line  # a folded continuation belongs to the field above
        else:
            fields.append(line)
    long = [len(field.rstrip(b"\r\n")) for field in fields if _too_long(field)]
    if not long:
        return raw, []
    kept = (f[:MAX_FIELD_BYTES] + b"\r\n" if _too_long(f) else f for f in fields)
    defect = f"{len(long)} header field(s) over {MAX_FIELD_BYTES} bytes cut (longest {max(long)})"
    return b"".join(kept) + raw[end:], [defect]


def _too_long(field: bytes) -> bool:
    return len(field) > MAX_FIELD_BYTES and b"=?" in field


def long_header_lines(raw: bytes) -> list[str]:
    """RFC 5322 §2.1.1: header lines over 998 bytes (without the line end) are recorded."""
    long = []
    for line in _LINE_END.split(raw[: MAX_HEADER_BYTES + 4]):
        if not line:  # the empty line that ends the header block
            break
        if len(line) > MAX_HEADER_LINE:
            long.append(len(line))
    if not long:
        return []
    return [f"{len(long)} header line(s) over {MAX_HEADER_LINE} bytes (longest {max(long)})"]


def header(message: Message, name: str, defects: list[str] | None = None) -> str:
    """The first `name` header, decoded; read raw so that 8-bit bytes are not lost on the way."""
    for key, value in message.raw_items():
        if key.lower() == name:
            decoded = words.decode_words(str(value), defects, partial(body_charset, message), name)
            return single_line(decoded)
    return ""


def header_defects(message: Message) -> list[str]:
    """What reading the stored headers had to guess or replace."""
    found: list[str] = []
    for name in ("subject", *SIGNAL_HEADERS):
        header(message, name, found)
    return list(dict.fromkeys(found))


def display_name(message: Message, sender: str, parsed: str, defects: list[str]) -> str:
    """The sender's name, decoded here from the raw From header.

    mail-parser leaves raw 8-bit bytes as surrogates and words in a charset it lacks (or one
    that mislabels its bytes) undecoded; its own reading is kept only where the header is not
    one that email.utils can split.
    """
    raw = next((str(v) for k, v in message.raw_items() if k.lower() == "from"), "")
    hint = partial(body_charset, message)
    for name, addr in getaddresses([raw]):
        if addr and addr.strip().lower() == sender:
            return single_line(words.decode_words(name, defects, hint, "from"))
    return single_line(words.decode_words(parsed, defects, hint, "from"))


def single_line(value: str) -> str:
    return re.sub(r"[\r\n\t]+\s*", " ", value).strip()


def is_charset_defect(defect: object) -> bool:
    items = [str(i) for v in defect.values() for i in v] if isinstance(defect, Mapping) else []
    return bool(items) and all(i.startswith("CharsetDecodeDefect") for i in items)


def defect_text(defect: object) -> str:
    if isinstance(defect, Mapping):
        return "; ".join(f"{k}: {', '.join(map(str, v))}" for k, v in defect.items())
    return str(defect)
