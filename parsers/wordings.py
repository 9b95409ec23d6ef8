"""Step 3, what mail systems write when they bounce a mail: their senders, their subjects, their
words, and how they name the recipients that failed (for the MTAs flufl.bounce does not know)."""

from __future__ import annotations

import re

# Local parts (or a bare From word) that only mail systems send from (RFC 5321 §4.5.1, RFC 2142).
DAEMON = re.compile(r"^(?:mailer[-_]?daemon|mail[-_]daemon|postmaster|post_master)$", re.I)
# Senders that read as a mail system, though people use some of them too: evidence, not proof.
SYSTEM_SENDER = re.compile(
    r"^(?:mdaemon|mail[-_.]?(?:admin|administrator|delivery|system|gw)|sysadmin|"
    r"system administrator|bounces?|smtp|mta|mail-?gateway)$|"
    r"^(?:mail delivery (?:subsystem|system|service)|mail administrator|postmaster|"
    r"system administrator|microsoft outlook|mail system)$",
    re.I,
)
# Subjects MTAs give their bounces; anchored, so that "Re: …" or "Fwd: …" from a person is not one.
BOUNCE_SUBJECT = re.compile(
    r"^\s*(?:\[bounce\]|undeliver(?:ed|able)\b|undelivered mail returned to sender|"
    r"returned mail\b|mail delivery fail|delivery status notification|"
    r"delivery (?:failure|failed|notification|report|problem)|failure notice|"
    r"non[- ]?deliver(?:y|able)|mail system error|warning: could not send message|"
    r"(?:mail|message) (?:could not be |not )?delivered\b|delayed mail|"
    r"unzustellbar|nicht zustellbar|non remis|non distribuable|"
    r"(?:rapport de )?non-remise|[ée]chec de (?:la )?remise)",
    re.I,
)
# Sentences mail systems put into their bounces and people do not write: (who, wording).
WORDINGS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (who, re.compile(wording, re.I))
    for who, wording in (
        ("Apache James", r"this is the james mail server|wasn'?t able to deliver your message"),
        ("Sendmail", r"-{3,} ?transcript of session follows|the original message was received at"),
        ("Postfix", r"this is the (?:mail system|postfix program) at host"),
        ("Exim", r"this message was created automatically by mail delivery software"),
        ("qmail", r"this is the qmail-send program at"),
        (
            "Microsoft Exchange",
            r"delivery has failed to these recipients or groups|"
            r"your message did not reach some or all of the intended recipients|"
            r"your message to \S+ couldn'?t be delivered",
        ),
        ("Gmail", r"delivery to the following recipients? failed permanently"),
        ("KDDI", r"your mail sent on\b[\s\S]{0,120}?\bcould not be\s+delivered to"),
        ("fml", r"original mail as follows:|fml system error message|you are not a member of"),
        ("mobile carrier", r"message could not be delivered to (?:the )?mobile|not a valid mobile"),
        ("Lotus Domino", r"was not delivered to:\s"),
        (
            "a mail system",
            r"could not be delivered to (?:one or more|the following) (?:recipients?|address)|"
            r"delivery to the following recipients? (?:failed|has been delayed)",
        ),
    )
)
# Failed recipients in the wording of bounces flufl.bounce has no detector for.
FAILED_LINES: tuple[re.Pattern[str], ...] = (
    re.compile(r"^\s*failed recipient\(s\):\s*\n((?:\s*\S+@\S+\s*\n)+)", re.I | re.M),  # James
    re.compile(r"could not be\s+delivered to:?\s*\n((?:\s*<?\S+@[^\s>]+>?.*\n)+)", re.I),  # KDDI
    re.compile(r"^\s*error:\s*<?([^\s<>@]+@[^\s<>]+?)>?\s", re.I | re.M),  # mobile carrier
    re.compile(r"following recipient\(s\) could not be reached:\s+(\S+@\S+)", re.I),  # Exchange
)
ADDRESS = re.compile(r"<?([^\s<>@\"]+@[a-z0-9.-]+\.[a-z]{2,})>?", re.I)
