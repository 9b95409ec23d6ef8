"""Step 5, automatic mail (RFC 3834 §2 and §5, RFC 2369, RFC 3464, RFC 5965, RFC 8098): whether
a mail was sent by a machine, and whether it is a bounce; neither is ever answered (R6.1)."""

from __future__ import annotations

import re

from parsers.mail import ParsedMail

_LIST_HEADERS = ("list-id", "list-unsubscribe", "list-post")
_AUTOREPLY_HEADERS = ("x-autoreply", "x-autorespond", "x-auto-reply")
_BULK_PRECEDENCE = frozenset({"bulk", "list", "junk", "auto_reply", "auto-reply", "autoreply"})
_DAEMONS = re.compile(
    r"^(?:mailer[-_]?daemon|mail[-_]daemon|postmaster|post_master)(?:@|$)", re.IGNORECASE
)
_COMMENT = re.compile(r"\([^()]*\)")
# What out-of-office and vacation replies put before (or as) the subject, in the clients and
# servers that send them (Outlook/Exchange, Lotus Notes "AUTO:", Sieve vacation "Auto:", GMX,
# web.de, Zimbra). Anchored at the start: a customer who mentions "out of office" in a subject is
# not one; a prefix needs its colon unless it is the whole subject.
_VACATION_WORDS = (
    r"auto(?:matic|matische|matisch|m\.)?[-\s]?(?:reply|response|antwort|antwoord)|auto|"
    r"autorespond(?:er)?|out\s+of\s+(?:the\s+)?office(?:\s+(?:auto)?reply)?|ooo|"
    r"abwesenheit(?:snotiz|smeldung)?|abwesend|r[ée]ponse\s+automatique|absence|absente?|"
    r"absent\s+du\s+bureau|vacation(?:\s+reply)?|risposta\s+automatica|"
    r"respuesta\s+autom[áa]tica"
)
# Also behind a tag a mail system puts first ("[EXTERNAL] Automatic reply: …"), as a tag itself
# ("[Autoreply] …"), or as the whole subject before a parenthesis ("Abwesenheitsnotiz (Urlaub)")
_VACATION_NOTICE = (  # what only such a reply calls itself: it may go on in parentheses
    r"abwesenheits(?:notiz|meldung)|out\s+of\s+(?:the\s+)?office|automatic\s+reply|"
    r"r[ée]ponse\s+automatique"
)
_VACATION_SUBJECT = re.compile(
    rf"^\s*(?:\[[^\]]{{1,40}}\]\s*)?(?:\[(?:{_VACATION_WORDS})\]|(?:{_VACATION_NOTICE})\s*\(|"
    rf"(?:{_VACATION_WORDS})\s*(?:[:：]|[.!]?\s*$))",
    re.IGNORECASE,
)
# RFC 7489 §7.2.1.1: the subject every DMARC aggregate report carries.
_DMARC_REPORT = re.compile(r"^\s*report\s+domain:.+submitter:.+report-id:", re.IGNORECASE)


def bounce_reason(mail: ParsedMail, envelope_from: str | None) -> str | None:
    """Why this mail is a bounce or a DSN (RFC 3464), or None. Bounces are never answered.

    A feedback report or a read receipt is automatic mail, not a bounce (`automatic_reason`),
    and so is a vacation reply, though it comes from the null sender too (RFC 3834 §3.3).
    """
    if mail.report is not None:
        return mail.report.reason if mail.report.kind == "bounce" else None
    if _DAEMONS.match(mail.from_addr) or "x-failed-recipients" in mail.headers:
        return "mail from a mailer daemon"
    envelope = (envelope_from or "").strip("<> ")
    if _DAEMONS.match(envelope):
        return "envelope sender is a mailer daemon"
    if _auto_reply(mail):
        return None
    if envelope_from is not None and envelope == "":
        return "null envelope sender"
    if mail.headers.get("return-path", "x").strip() == "<>":
        return "null return path"
    return None


def _auto_reply(mail: ParsedMail) -> bool:
    """A responder's answer to a mail (RFC 3834 §3): a vacation or out-of-office reply."""
    auto = _COMMENT.sub("", mail.headers.get("auto-submitted", "")).split(";")[0].strip().lower()
    return (
        auto == "auto-replied"
        or any(header in mail.headers for header in _AUTOREPLY_HEADERS)
        or _VACATION_SUBJECT.match(mail.subject) is not None
    )


def automatic_reason(mail: ParsedMail) -> str | None:
    """Why this mail was sent by a machine (RFC 3834 §5), or None. It gets no auto-reply."""
    if mail.report is not None and mail.report.kind != "bounce":
        return mail.report.reason
    # RFC 3834 §5: the keyword may carry comments and parameters; only "no" is a person.
    auto = _COMMENT.sub("", mail.headers.get("auto-submitted", "")).split(";")[0].strip().lower()
    if auto and auto != "no":
        return f"Auto-Submitted: {auto}"
    for field in ("precedence", "x-precedence"):  # "bulk; charset…", "bulk (list)": its word
        words = _COMMENT.sub("", mail.headers.get(field, "")).replace(";", " ").split()
        if words and words[0].lower() in _BULK_PRECEDENCE:
            return f"Precedence: {words[0].lower()}"
    for header in _LIST_HEADERS:
        if header in mail.headers:
            return f"mailing list ({header})"
    for header in _AUTOREPLY_HEADERS:
        if header in mail.headers:
            return f"auto-reply ({header})"
    suppress = mail.headers.get("x-auto-response-suppress", "").lower()
    if any(word in suppress for word in ("all", "oof", "autoreply")):
        return f"X-Auto-Response-Suppress: {suppress}"
    return _subject_reason(mail.subject)


def _subject_reason(subject: str) -> str | None:
    """Automatic mail that says so only in its subject: vacation replies without RFC 3834's
    header (older Exchange, Lotus Notes, web mailers), DMARC aggregate reports."""
    vacation = _VACATION_SUBJECT.match(subject)
    if vacation:
        return f"reads as an out-of-office reply ({' '.join(vacation.group(0).split())!r})"
    if _DMARC_REPORT.match(subject):
        return "DMARC aggregate report (RFC 7489)"
    return None
