"""§3.11.7: whether a customer's answer to a session completion statement queries it, or is
feedback (a thank-you). Pure: text in, a verdict out.

A maintained classifier would be too much for a handful of mails a month: the statement asks the
customer to write QUERY in the first line of a query, and the words people use to contest a
charge (in English, German and French) count too, wherever they are in the new text, unless a
negation stands before them in their clause ("no query", "nothing incorrect", "keine
Reklamation", "das ist nicht falsch", "aucune contestation").
"""

from __future__ import annotations

import re

from parsers.signals import unnegated

_WORDS = (
    r"quer(?:y|ies|ied|ying)|disput(?:e|es|ed|ing)|contest(?:s|ed|ing)?|"
    r"not\s+(?:agreed|accepted|correct|right)|(?:do|does|did)\s*n[o']t\s+(?:agree|accept)|"
    r"disagree[sd]?|incorrect|overcharged?|too\s+many\s+units|complain(?:t|ts|ed)?|"
    r"reklamation(?:en)?|reklamier(?:e|en|t)|beanstand(?:e|en|ung)|einspruch|widerspr(?:uch|echen)|"
    r"nicht\s+(?:einverstanden|korrekt|richtig|akzeptiert)|falsch\s+berechnet|"
    r"contestation|contest(?:e|ons|er|é)|r[ée]clamation|pas\s+d['’]accord|"
    r"(?:n['’]est|ne\s+sont)\s+pas\s+(?:correct|juste)e?s?|erron[ée]e?|"
    # the plain words: "the units charged are wrong", "die Abrechnung ist falsch", "c'est faux"
    r"wrong|mistaken|an?\s+(?:error|mistake)|falsch|fehlerhaft|faux|fausses?|une\s+erreur"
)
# A word before it in its clause, with at most three between, takes a word of contesting back
_NEGATION = re.compile(
    r"(?<![\w-])(?:no|not(?:\s+a)?|nothing|never|without|n['’]t|kein(?:e|en|er)?|nicht|ohne|"
    r"nichts|aucune?|sans|pas\s+de|rien)(?:\W+\w+){0,3}\W*\Z",
    re.IGNORECASE,
)
_QUERY = re.compile(rf"(?<![\w-])(?:{_WORDS})(?![\w-])", re.IGNORECASE)
_FIRST_LINE = re.compile(r"^\W*query\b", re.IGNORECASE)


def is_query(text: str) -> bool:
    """True for a query of the statement, False for feedback."""
    lines = [line for line in text.splitlines() if line.strip()]
    if lines and _FIRST_LINE.match(lines[0]):
        return True
    return unnegated(_QUERY, text, _NEGATION) is not None
