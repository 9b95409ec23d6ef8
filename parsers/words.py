"""Step 3, header words: RFC 2047 encoded words and raw 8-bit bytes as text."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable

from parsers import charsets

# RFC 2047 §2 encoded word, "=?charset?B|Q?text?="; the charset may carry an RFC 2231 §5
# language ("utf-8*de"). The text may hold the spaces broken clients leave, never a "?" (§2),
# so that a header full of "=?" is read in one pass (email.header's pattern takes about a
# minute on 240 kB of them).
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\r\n]*)\?=")


def decode_words(
    value: str,
    defects: list[str] | None = None,
    hint: Callable[[], str | None] | None = None,
    what: str = "header",
) -> str:
    """RFC 2047 encoded words to text; raw 8-bit header bytes as UTF-8 (RFC 6532), else guessed.

    `hint` gives the body's charset, the likeliest one for header bytes that name none.
    """
    found: list[str] = [] if defects is None else defects
    value = raw_text(value, found, hint, what)
    pieces: list[str | tuple[str, bytes]] = []  # text as it is, or (charset label, octets)
    position = 0
    for word in _ENCODED_WORD.finditer(value):
        between = value[position : word.start()]
        position = word.end()
        data = _word_bytes(word.group(2), word.group(3))
        label = word.group(1).split("*", 1)[0].lower()  # RFC 2231 §5: "charset*language"
        last = pieces[-1] if pieces else ""
        if data is None:
            found.append(f"{what}: an encoded word that cannot be read, kept as sent")
            pieces += [between, word.group(0)]
        elif isinstance(last, tuple) and last[0] == label and not between.strip(" \t\r\n"):
            # RFC 2047 §6.2: the space between two encoded words is not text; and a character
            # that a client split across two words of one charset is whole again.
            pieces[-1] = (label, last[1] + data)
        else:
            pieces += [between, (label, data)]
    pieces.append(value[position:])
    return "".join(
        piece if isinstance(piece, str) else _word_text(*piece, found, what, hint)
        for piece in pieces
    )


def raw_text(
    value: str, defects: list[str] | None, hint: Callable[[], str | None] | None, what: str
) -> str:
    """A header value with its raw 8-bit bytes (surrogates, as email keeps them) read as text."""
    if not any("\udc80" <= ch <= "\udcff" for ch in value):
        return value
    raw = value.encode("utf-8", "surrogateescape")
    try:
        return raw.decode("utf-8")  # RFC 6532 §3.2: 8-bit header text is UTF-8
    except UnicodeDecodeError:
        return charsets.noted(charsets.decode(raw, None, hint() if hint else None), defects, what)


def _word_bytes(encoding: str, text: str) -> bytes | None:
    """The octets of one encoded word (RFC 2047 §4), None where they cannot be read."""
    try:
        if encoding in "bB":  # missing padding, as some clients send it, is added
            text = re.sub(r"\s+", "", text)
            return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        quoted = text.encode("utf-8", "surrogateescape").replace(b"_", b" ")
        return re.sub(rb"=([0-9A-Fa-f]{2})", lambda m: bytes.fromhex(m.group(1).decode()), quoted)
    except (binascii.Error, ValueError):
        return None


def _word_text(
    label: str, data: bytes, found: list[str], what: str, hint: Callable[[], str | None] | None
) -> str:
    decoded = charsets.decode(data, label)
    if decoded.defect and hint is not None:  # a label that did not fit: the body's, then a guess
        decoded = charsets.decode(data, label, hint())
    return charsets.noted(decoded, found, what)
