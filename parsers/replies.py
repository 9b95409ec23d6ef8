"""Step 5: the newest part of a reply, without quoted history or signature.

mail-parser-reply does it for EN, DE and FR; quoted ">" blocks under an attribution line
(Thunderbird's bottom posting and inline answers) and Russian attributions are handled here.
"""

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
# The line a client puts above the mail it quotes, as one line (wrapped ones are joined first);
# no longer than such lines are, so that a hostile long line costs no more than a short one.
# In Russian: Apple Mail, Thunderbird and Yandex ("… написал(а):", "… пишет:"), and Gmail,
# which names no verb ("сб, 21 нояб. 2026 г. в 10:02, Имя <адрес>:").
_RUSSIAN = (
    r"[^\n]{0,300}\S\s+(?:написал(?:\(а\)|а)?|пишет)"
    r"|[^\n]{0,100}\d{4}\s*г\.,?\s*в\s*\d{1,2}:\d{2},?\s[^\n]{0,200}"
)
_ATTRIBUTION = re.compile(
    r"^\s*(?:"
    r"On\s[^\n]{0,300}\swrote"  # Gmail, Apple Mail, Thunderbird: "On 21/11/2026 10:02, Name wrote:"
    r"|Am\s[^\n]{0,300}\sschrieb\s[^\n]{0,300}"  # "Am 21.11.26 um 10:02 schrieb Name:"
    r"|Le\s[^\n]{0,300}\sa\s+écrit"  # "Le 21/11/2026 à 10:02, Name a écrit :"
    rf"|{_RUSSIAN}"
    r")\s*:\s*$",
    re.IGNORECASE,
)
# Those of _ATTRIBUTION's languages that mail-parser-reply does not know.
_OTHER_ATTRIBUTION = re.compile(rf"^(?:{_RUSSIAN})\s*:[ \t]*$", re.IGNORECASE | re.MULTILINE)
_QUOTED = re.compile(r"^\s*>")


def latest_reply(text: str) -> str:
    """The newest part of a reply: no quoted history, no signature. Empty when a quoted history
    was found under nothing of the sender's own (a reply of only a file, a signature or "Sent
    from my iPhone"): the quote is never taken for the reply. A text in which no history was
    found is its own newest part, kept whole when it is all signature-like ("Thanks, done.")."""
    if not text.strip():
        return ""
    joined = _join_wrapped_attributions(text.replace("\xa0", " ").replace("\u202f", " "))
    unquoted = _without_quoted_blocks(joined)
    prepared = _before_other_attribution(unquoted)
    try:
        # keep_hyphen_lists: a "- item" list in the reply is content, not a signature.
        parsed = EmailMessage(text=prepared, languages=list(LANGUAGES), keep_hyphen_lists=True)
        replies = parsed.read().replies
    except (re.error, RecursionError, IndexError):
        return text.strip()
    body = replies[0].body if replies else ""
    body = _TRAILING_SEPARATOR.sub("", _TRAILING_QUOTE.sub("", "\n" + body)).strip()
    if body:
        return body
    if len(replies) > 1:  # a header block the library knows ("-----Original Message-----")
        return ""
    if unquoted != joined:  # ">" lines under an attribution, taken out above: the rest is new
        return unquoted.strip()
    return text.strip()


def _without_quoted_blocks(text: str) -> str:
    """The text without its ">" lines, where an attribution line introduces them.

    Thunderbird and others quote that way, with the answer above the quote, below it, or
    between its lines; mail-parser-reply would keep what follows its first attribution. The
    attribution lines go too; ">" lines that none introduced are left as they are.
    """
    lines = text.split("\n")
    quoted = {index for index, line in enumerate(lines) if _QUOTED.match(line)}
    attributions = set()
    for index in quoted:
        above = index - 1
        while above >= 0 and above not in quoted and not lines[above].strip():
            above -= 1
        if above >= 0 and above not in quoted and _ATTRIBUTION.match(lines[above]):
            attributions.add(above)
    if not attributions:
        return text
    dropped = quoted | attributions
    kept = "\n".join(line for index, line in enumerate(lines) if index not in dropped)
    return re.sub(r"\n(?:[ \t]*\n){2,}", "\n\n", kept)


def _before_other_attribution(text: str) -> str:
    """The text above the first Russian attribution line, which the library does not know."""
    found = _OTHER_ATTRIBUTION.search(text)
    return text[: found.start()] if found and text[: found.start()].strip() else text


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
