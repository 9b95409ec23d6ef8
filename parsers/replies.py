"""Strip quoted history and signatures from replies (EN, DE, FR) with mail-parser-reply."""

from __future__ import annotations

import re

from mailparser_reply import EmailMessage

LANGUAGES = ("en", "de", "fr")
# Lines quoted with ">" at the end of a reply that no header line introduced ("bottom quoting").
_TRAILING_QUOTE = re.compile(r"(?:\n>[^\n]*)+\s*\Z")
# A separator that Outlook and others put above the quoted header block, left at the end.
_TRAILING_SEPARATOR = re.compile(r"(?:\n\s*(?:-{3,}[^\n]{0,60}-{3,}|_{8,})\s*)+\Z")
# An attribution line ("On … wrote:", "Am … schrieb …:", "Le … a écrit :") that the sender's
# client wrapped at about 76 columns; the library only recognises it on one line.
_ATTRIBUTION_START = re.compile(r"^\s*(?:On|Am|Le)\s+\S")
_ATTRIBUTION_END = re.compile(r"(?:wrote|schrieb|écrit)\s*:\s*$", re.IGNORECASE)


def latest_reply(text: str) -> str:
    """The newest part of a reply: no quoted history, no signature. Falls back to the whole text."""
    if not text.strip():
        return ""
    prepared = _join_wrapped_attributions(text.replace("\xa0", " ").replace("\u202f", " "))
    try:
        # keep_hyphen_lists: a "- item" list in the reply is content, not a signature.
        parsed = EmailMessage(text=prepared, languages=list(LANGUAGES), keep_hyphen_lists=True)
        replies = parsed.read().replies
    except (re.error, RecursionError, IndexError):
        return text.strip()
    body = replies[0].body if replies else ""
    body = _TRAILING_SEPARATOR.sub("", _TRAILING_QUOTE.sub("", "\n" + body)).strip()
    return body or text.strip()


def _join_wrapped_attributions(text: str) -> str:
    lines = text.split("\n")
    joined: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        if _ATTRIBUTION_START.match(line) and not _ATTRIBUTION_END.search(line):
            for span in (1, 2):
                tail = lines[index + 1 : index + 1 + span]
                if len(tail) == span and _ATTRIBUTION_END.search(tail[-1]):
                    line = " ".join(part.strip() for part in [line, *tail])
                    index += span
                    break
        joined.append(line)
        index += 1
    return "\n".join(joined)
