"""What an edge hands to intake and what it gets back: RawMail in, a Receipt out, or a failure
that may pass, so that the edge does not take the mail and it comes again (R6.6)."""

from __future__ import annotations

from dataclasses import dataclass, field

HELD_OUTCOMES = ("hold", "bounce", "quarantined")


@dataclass(frozen=True)
class RawMail:
    """What an edge hands over: the bytes and the envelope."""

    data: bytes
    source: str  # smtp | imap
    mail_from: str | None = None  # SMTP envelope sender; None when read from a mailbox
    rcpt_tos: tuple[str, ...] = ()
    peer: str | None = None  # the connecting IP (SMTP)
    helo: str | None = None  # what the client said in EHLO/HELO (SMTP)


@dataclass(frozen=True)
class Receipt:
    """What became of a mail. `outcome` is an Action value, `duplicate` or `quarantined`."""

    outcome: str
    stored_id: int
    sr_id: str | None = None
    deliveries: tuple[tuple[int, str], ...] = field(default=())
    reason: str = ""

    @property
    def held(self) -> bool:
        return self.outcome in HELD_OUTCOMES


class TemporaryFailure(Exception):
    """R6.6: a failure that may pass. The edge does not take the mail (SMTP 451, or it stays in
    the mailbox), so that it comes again; nothing is held or refused for such a reason."""


class StorageError(TemporaryFailure):
    """The database could not store the mail."""


class TemporaryAuthenticationFailure(TemporaryFailure):
    """DNS did not answer in time, and its answer could decide whether the sender is proven."""


class NotHeld(ValueError):
    """Only a held mail can be released or dismissed, and only a quarantined one retried."""


NotQuarantined = NotHeld  # the name `quarantine retry` knows it by
