"""Strip quoted history and signatures from replies (EN, DE, FR) with mail-parser-reply."""

from __future__ import annotations

import re

from mailparser_reply import EmailReplyParser

LANGUAGES = ("en", "de", "fr")
_PARSER = EmailReplyParser(languages=list(LANGUAGES))
# Lines quoted with ">" at the end of a reply that no header line introduced ("bottom quoting").
_TRAILING_QUOTE = re.compile(r"(?:\n>[^\n]*)+\s*\Z")


def latest_reply(text: str) -> str:
    """The newest part of a reply: no quoted history, no signature. Falls back to the whole text."""
    if not text.strip():
        return ""
    try:
        replies = _PARSER.read(text).replies
    except (re.error, RecursionError, IndexError):
        return text.strip()
    body = replies[0].body if replies else ""
    body = _TRAILING_QUOTE.sub("", "\n" + body).strip()
    return body or text.strip()
