"""§3.11.7: whether a customer's answer to a session completion statement queries it, or is
feedback (a thank-you). Pure: text in, a verdict out.

A maintained classifier would be too much for a handful of mails a month: the statement asks the
customer to write QUERY in the first line of a query, and the words people use to contest a
charge (in English, German and French) count too, wherever they are in the new text, unless a
negation stands right before them ("no query", "keine Reklamation", "aucune contestation").
"""

from __future__ import annotations

import re

_WORDS = (
    r"quer(?:y|ies|ied|ying)|disput(?:e|es|ed|ing)|contest(?:s|ed|ing)?|"
    r"not\s+(?:agreed|accepted|correct|right)|(?:do|does|did)\s*n[o']t\s+(?:agree|accept)|"
    r"disagree[sd]?|incorrect|overcharged?|too\s+many\s+units|complain(?:t|ts|ed)?|"
    r"reklamation(?:en)?|reklamier(?:e|en|t)|beanstand(?:e|en|ung)|einspruch|widerspr(?:uch|echen)|"
    r"nicht\s+(?:einverstanden|korrekt|richtig|akzeptiert)|falsch\s+berechnet|"
    r"contestation|contest(?:e|ons|er|é)|r[ée]clamation|pas\s+d['’]accord|"
    r"(?:n['’]est|ne\s+sont)\s+pas\s+(?:correct|juste)e?s?|erron[ée]e?"
)
_NEGATION = r"(?:no|not\s+a|without|kein(?:e|en)?|ohne|aucune?|sans|pas\s+de)\s+"
_QUERY = re.compile(rf"(?<![\w-])(?P<neg>{_NEGATION})?(?:{_WORDS})(?![\w-])", re.IGNORECASE)
_FIRST_LINE = re.compile(r"^\W*query\b", re.IGNORECASE)


def is_query(text: str) -> bool:
    """True for a query of the statement, False for feedback."""
    lines = [line for line in text.splitlines() if line.strip()]
    if lines and _FIRST_LINE.match(lines[0]):
        return True
    return any(found.group("neg") is None for found in _QUERY.finditer(text))
