"""Step 5 for the Support Update Service: what a mail asks of it (§3.8: "to subscribe or
unsubscribe from this service, please contact the SOC", R4.2), in English, German or French; the
`unsubscribe TOKEN` subject of a bulletin's List-Unsubscribe mailto (RFC 2369); the admins'
`#approve` and `#deny reason` (read by parsers/commands.py with the table here).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SUBSCRIBE = "subscribe"
UNSUBSCRIBE = "unsubscribe"
UNCLEAR = "unclear"  # a mail to the SUS address that says neither


@dataclass(frozen=True)
class Asked:
    action: str  # subscribe | unsubscribe | unclear
    wording: str  # the words that said it, for the record


# What names the service. A subject to the support address asks something of SUS only with one
# of these: "subscription" alone is as often a FortiGuard licence as a bulletin.
_SERVICE = (
    r"\bSUS\b|support[- ]?update[- ]?(?:service|dienst)|"
    r"update[- ]?(?:notifications?|notices?|bulletins?|benachrichtigung(?:en)?|mails?)|"
    r"(?:notifications?|avis|bulletins?) de mises? à jour|service de mises? à jour du support|"
    r"(?:security |technical )?bulletins\b|advisories\b"
)
SERVICE = re.compile(_SERVICE, re.IGNORECASE)

# (action, language, wording): the words that ask. Unsubscribing's words contain subscribing's
# (désabonnement, unsubscribe): the earliest match in the text decides, and where two start
# together the longer, unsubscribing, one does.
WORDINGS: tuple[tuple[str, str, str], ...] = (
    (UNSUBSCRIBE, "en", r"un-?subscri(?:be|ption)|opt[- ]?out|cancel\w*(?: my)? subscription"),
    (UNSUBSCRIBE, "en", r"remove me from|take me off|(?:no longer|stop) (?:receiv|send)\w*"),
    (UNSUBSCRIBE, "de", r"abbestell\w*|austrag\w*|deabonnier\w*|k[üu]ndig\w*"),
    (UNSUBSCRIBE, "de", r"nicht mehr (?:erhalten|bekommen|zusenden|zuschicken)"),
    (UNSUBSCRIBE, "fr", r"d[ée]s-?abonn\w*|d[ée]sinscri\w*|r[ée]sili\w*|ne plus recevoir"),
    (SUBSCRIBE, "en", r"subscri(?:be|ption)|sign (?:me )?up|add me to|opt[- ]?in|register for"),
    (SUBSCRIBE, "de", r"abonnier\w*|abonnement|eintragen|aufnehmen|bestellen"),
    (SUBSCRIBE, "fr", r"abonn\w*|inscri\w*|souscri\w*"),
)
_ASKING = tuple((action, re.compile(rf"\b(?:{w})", re.IGNORECASE)) for action, _, w in WORDINGS)
_TOKEN_SUBJECT = re.compile(r"^\s*unsubscribe\s+(\S+)\s*$", re.IGNORECASE)
BODY_LIMIT = 2000  # characters of a mail to the SUS address read for what it asks

# The admins' answers to a request's notice (parsers/commands.py reads the `#name` lines).
ADMIN_COMMANDS: dict[str, tuple[str, str | None]] = {
    "approve": ("approve", None),
    "accept": ("approve", None),
    "deny": ("deny", None),
    "reject": ("deny", None),
    "decline": ("deny", None),
}


def asked_in_subject(subject: str) -> Asked | None:
    """A subject to the support address that asks to subscribe to or unsubscribe from SUS."""
    if not SERVICE.search(subject):
        return None
    return _earliest(subject)


def asked_of_sus(subject: str, text: str) -> Asked:
    """A mail to the SUS address: what its subject asks, else its text; else unclear."""
    return _earliest(subject) or _earliest(text[:BODY_LIMIT]) or Asked(UNCLEAR, "")


def unsubscribe_token(subject: str) -> str | None:
    """The token of `unsubscribe TOKEN`, the subject of List-Unsubscribe's mailto (RFC 2369)."""
    found = _TOKEN_SUBJECT.match(subject)
    return found.group(1) if found else None


def _earliest(text: str) -> Asked | None:
    found = [(m.start(), -len(m.group(0)), action, m.group(0)) for action, m in _matches(text)]
    if not found:
        return None
    _, _, action, wording = min(found)
    return Asked(action, wording)


def _matches(text: str) -> list[tuple[str, re.Match[str]]]:
    return [(action, m) for action, pattern in _ASKING if (m := pattern.search(text))]
