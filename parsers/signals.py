"""What a mail says about itself: the SR it names, its title, the priority, type, escalation or
analysis it asks for, whether it is a third party's verification mail. Whether it is automatic
mail is parsers/automatic.py."""

from __future__ import annotations

import re
from dataclasses import dataclass

from parsers.mail import ParsedMail

# Service Request IDs: "SR-" and two groups of four Crockford base-32 symbols (no I, L, O, U).
SR_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# SR-XXXX-XXXX, also written SR-XXXXXXXX or SRXXXXXXXX; not SRXXXX-XXXX, which is how serials
# and models are written (Juniper's "SRX300-0002"). Any character but a letter or digit may stand
# around it: "SR-7ZFD-89W0_update" names the SR.
_SR_TOKEN = re.compile(
    r"(?<![0-9A-Z])SR(?:-([0-9A-HJKMNP-TV-Z]{4})-?|([0-9A-HJKMNP-TV-Z]{4}))"
    r"([0-9A-HJKMNP-TV-Z]{4})(?![0-9A-Z])",
    re.IGNORECASE,
)


def sr_tokens(subject: str) -> tuple[str, ...]:
    """SR IDs named in a subject, normalised to `SR-XXXX-XXXX`, in order of appearance."""
    found = (f"SR-{(a or b).upper()}-{c.upper()}" for a, b, c in _SR_TOKEN.findall(subject))
    return tuple(dict.fromkeys(found))


def is_reply(mail: ParsedMail) -> bool:
    """A reply to an earlier mail: it may carry quoted history to strip. A forward is not one:
    what it quotes is its content."""
    return bool(mail.in_reply_to or mail.references or _REPLY_PREFIX.match(mail.subject))


_REPLY_PREFIX = re.compile(r"^\s*(?:re|aw|antw|réf|ref|sv|vs)\s*(?:\[\d+\])?\s*:", re.IGNORECASE)


_PREFIX = re.compile(
    r"^\s*(?:(?:re|aw|antw|wg|fw|fwd|tr|réf|ref|sv|vs)\s*(?:\[\d+\])?\s*:\s*|\[\s*\]\s*)+",
    re.IGNORECASE,
)


def title(subject: str) -> str:
    """The subject as an SR title: reply/forward prefixes and SR tokens removed."""
    text = _SR_TOKEN.sub("", subject)
    text = re.sub(r"\[\s*\]|\(\s*\)", "", text)
    text = _PREFIX.sub("", text)
    text = re.sub(r"\s+", " ", text).strip(" -:")
    return text[:200] or "(no subject)"


# --- what the customer asks for -----------------------------------------------------------------

# A word that takes back what follows it in its clause: "no need to escalate", "bitte nicht
# eskalieren", "pas besoin d'escalader"; up to three words may stand between
_NEGATION = re.compile(
    r"(?:\bno\s+need\s+to|\bnot|n't|\bno|\bnever|\bwithout|\bkein\w*|\bnicht|\bohne|\bpas|"
    r"\bsans|\bne|\bjamais)\W+(?:\w+\W+){0,3}\Z",
    re.IGNORECASE,
)
_CLAUSE_END = re.compile(r"[.,;:!?\n]")

_PRIORITY = re.compile(
    r"\b(?:priority|priorit[äa]t|priorit[ée]|prio|severity|sev|p)\s*[:#=]?\s*([1-4])\b",
    re.IGNORECASE,
)
# What reads as a production outage (R1.4): a system the business runs on down, in the words
# customers use; a tunnel or a link down is not one by itself (P2 at most, for the SOC to judge)
_SYSTEMS_EN = r"production|network|firewalls?|systems?|site|servers?|cluster|data ?cent(?:er|re)"
_SYSTEMS_DE = r"produktion|netz(?:werk)?|firewalls?|systeme?|server|cluster|rechenzentrum"
_SYSTEMS_FR = r"production|r[ée]seau|pare-feu|firewalls?|syst[èe]mes?|serveurs?|site|cluster"
_OUTAGE = re.compile(
    r"\b(?:"
    rf"(?:{_SYSTEMS_EN})(?:[ \t]+\w+){{0,2}}?[ \t]+(?:(?:is|are|went|has gone|have gone)[ \t]+)?"
    r"(?:down|offline)\b|hard down|outage|not functional|non[- ]functional|unusable|"
    r"nothing (?:works|passes|is working)|no traffic (?:passes|is passing|at all)|"
    r"(?:complete|total) loss of service|everything is down|"
    rf"(?:{_SYSTEMS_DE})(?:[ \t]+\w+){{0,3}}?[ \t]+(?:steht|stehen|ausgefallen|down)\b|"
    r"produktionsausfall|totalausfall|kompletter ausfall|nichts geht mehr|es geht nichts mehr|"
    rf"(?:{_SYSTEMS_FR})(?:[ \t]+\w+){{0,3}}?[ \t]+(?:en panne|hors service|arr[êe]t[ée]e?s?|"
    r"tomb[ée]e?s?)|panne (?:totale|générale|generale)|plus rien ne (?:passe|fonctionne|marche)|"
    r"hors service"
    r")",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class PriorityRequest:
    """A priority the customer asked for (§3.5.2: recorded, never applied by e-mail)."""

    priority: int
    reason: str


def requested_priority(subject: str, text: str) -> PriorityRequest | None:
    """The priority asked for in the subject or first lines, unless its clause takes it back
    ("this is not a P1"); P1 when it reads as an outage, whatever else it asked for (a form's
    "Priority: 3" above "our production is down" is the outage R1.4 sends to the telephone)."""
    head = subject + "\n" + "\n".join(text.splitlines()[:25])
    outage = unnegated(_OUTAGE, head)
    if outage:
        return PriorityRequest(1, f"reads as an outage ({outage.group(0)!r})")
    asked = unnegated(_PRIORITY, head)
    if asked:
        return PriorityRequest(int(asked.group(1)), f"asked for {asked.group(0).strip()!r}")
    return None


def unnegated(
    pattern: re.Pattern[str], text: str, negation: re.Pattern[str] = _NEGATION
) -> re.Match[str] | None:
    """The first match of `pattern` (lower-case words, as `_search` takes) that no word before
    it in its clause takes back: a match of `negation` at the clause's end."""
    if _search(pattern, text) is None:
        return None
    for found in pattern.finditer(text):
        if not negation.search(_CLAUSE_END.split(text[: found.start()])[-1]):
            return found
    return None


# (pattern in the subject, SR type), first match wins (§3.11.4, §3.13.2).
REQUEST_TYPES: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"technical\s+baseline\s+assessment", re.IGNORECASE),
        "technical_baseline_assessment",
    ),
    (re.compile(r"secure\s*hands", re.IGNORECASE), "securehands"),
    (
        re.compile(
            r"vulnerability\s+(?:assessment|scan)|security\s+assessment\s+scan", re.IGNORECASE
        ),
        "vulnerability_assessment",
    ),
)


def request_type(subject: str) -> str:
    for pattern, kind in REQUEST_TYPES:
        if pattern.search(subject):
            return kind
    return "incident"


_RCA = re.compile(
    r"\b(?:root[- ]cause[- ]analys[ie]s|rca|ursachenanalyse|analyse (?:de la |des )?causes?"
    r"(?: racines?| profondes?)?)\b",
    re.IGNORECASE,
)


def asks_for_rca(subject: str, text: str) -> bool:
    """§3.5.6: a Root Cause Analysis is a SecureHands service, not part of troubleshooting."""
    return bool(_search(_RCA, subject + "\n" + "\n".join(text.splitlines()[:40])))


# --- escalation (§3.5.5) -----------------------------------------------------------------------

_ESCALATE = re.compile(
    r"\b(?:escalat(?:e|ed|ion|ing)|eskal(?:ation|ieren|ieren sie|iert)|escalad(?:e|er)|"
    r"escalation)\b",
    re.IGNORECASE,
)


# The gateway's own subjects that name an escalation (escalation_recorded_customer.*): a reply to
# one repeats them and asks for nothing
_OUR_ESCALATION_SUBJECTS = re.compile(
    r"(?:escalation recorded|eskalation erfasst|escalade enregistrée)\s*:", re.IGNORECASE
)


def asks_for_escalation(subject: str, text: str, title: str = "") -> bool:
    """An escalation asked for in the subject or in the first line of the mail, and not taken
    back in its clause ("no need to escalate"). Of the subject only what its writer added counts:
    not the gateway's own wording, nor `title`, the SR's title a reply's subject repeats."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    return any(unnegated(_ESCALATE, said) for said in (added_to_title(subject, title), first))


def added_to_title(subject: str, title: str) -> str:
    """What a reply's subject says beyond what it repeats: the SR's `title` and the gateway's
    own wording taken out ("Re: [SR-…] Escalation recorded: VPN down" adds nothing to "VPN
    down")."""
    added = _OUR_ESCALATION_SUBJECTS.sub(" ", subject)
    if title.strip():
        added = re.sub(re.escape(title.strip()), " ", added, flags=re.IGNORECASE)
    return added


# --- third-party verification mail ("Ticket Trick") --------------------------------------------

_VERIFICATION = re.compile(
    r"\b(?:(?:verify|confirm|activate|validate)\s+(?:your\s+)?(?:e-?mail(?:\s+address)?|account|"
    r"registration|sign[- ]?up|subscription)|verification\s+(?:code|link|e-?mail)|"
    r"one[- ]time\s+(?:pass)?code|security\s+code|sign[- ]?in\s+code|magic\s+link|"
    r"reset\s+your\s+password|password\s+reset|welcome\s+to\s+\w+|"
    r"bestätigen\s+sie\s+ihre|bestätigungs(?:code|link|-?e-?mail)|verifizieren\s+sie|"
    r"confirmez\s+votre|vérifiez\s+votre|code\s+de\s+(?:vérification|confirmation))",
    re.IGNORECASE,
)


def verification_reason(subject: str, text: str) -> str | None:
    """Why a mail looks like a service's sign-up or verification mail, or None.

    Help desks that answer such mails with the mail's content let anyone who registers an account
    with the support address read the verification link: they are held, and nobody is answered.
    """
    found = _search(_VERIFICATION, subject) or _search(_VERIFICATION, text[:3000])
    return f"looks like a verification mail ({found.group(0)!r})" if found else None


_FOLDED: dict[re.Pattern[str], re.Pattern[str]] = {}


def _search(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    """`pattern.search(text)` for a case-insensitive pattern of lower-case words, first tried on
    the case-folded text without IGNORECASE, which finds at least what the pattern would and is
    five times faster on a page of text (re's IGNORECASE compares every character both ways);
    only a text that passes is searched as written, for the match to report."""
    folded = _FOLDED.get(pattern)
    if folded is None:
        if re.search(r"(?<!\\)[A-Z]", pattern.pattern):  # it would never match folded text
            raise ValueError(f"not a pattern of lower-case words: {pattern.pattern[:40]}")
        folded = _FOLDED[pattern] = re.compile(pattern.pattern, pattern.flags & ~re.IGNORECASE)
    if folded.search(text.casefold()) is None:
        return None
    return pattern.search(text)
