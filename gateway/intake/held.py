"""R1.8, R6.3: an admin acts on what intake kept: release a held mail, retry a quarantined one
(both on the path of every mail, intake/receive.py `run`), or dismiss it."""

from __future__ import annotations

from gateway.core.runtime import Runtime
from gateway.core.vocabulary import StoredStatus
from gateway.intake.queries import set_outcome, stored_row
from gateway.intake.receipts import NotHeld, RawMail, Receipt
from gateway.intake.receive import Again, run
from gateway.storage.db import transaction
from parsers.mail import parse

HELD = (StoredStatus.review, StoredStatus.bounce, StoredStatus.quarantined)  # `review dismiss`
# What may be run through intake again: the statuses it takes, and whether a mail that would be
# held again stays as it was (release) or is stored with its new outcome (retry).
AGAIN = {
    "quarantined": ((StoredStatus.quarantined,), False),
    "held": ((StoredStatus.review, StoredStatus.bounce, StoredStatus.dismissed), True),
}


def retry_quarantined(stored: int, rt: Runtime) -> Receipt:
    """R6.3: run a quarantined mail through intake again (after a fix, or with new limits)."""
    return _again(stored, rt, "quarantined")


def release_held(stored: int, rt: Runtime) -> Receipt:
    """R1.8, R6.4: run a held mail through intake again, with today's directory and policies.

    A mail that would be held again stays as it was (nobody is sent anything); the receipt says
    why, under the mail's own id.
    """
    return _again(stored, rt, "held")


def dismiss_held(stored: int, rt: Runtime) -> None:
    """An administrator has looked at a held mail and let it be: status `dismissed`, kept."""
    with transaction(rt.sessions) as conn:
        row = stored_row(conn, stored)
        if row is None or row.status not in HELD:
            raise NotHeld(f"no held mail {stored}")
        set_outcome(conn, stored, StoredStatus.dismissed)


def _again(stored: int, rt: Runtime, kind: str) -> Receipt:
    """Intake once more for a stored mail, on the path of every mail: in one transaction the
    stored copy takes the new outcome (under the same id); if processing fails again (or a
    released mail would be held again), nothing changes. DNS trouble raises
    TemporaryAuthenticationFailure, nothing changed."""
    statuses, keep_if_held = AGAIN[kind]
    with transaction(rt.sessions, readonly=True) as conn:
        row = stored_row(conn, stored)
    if row is None or row.status not in statuses:
        raise NotHeld(f"no {kind} mail {stored}")
    raw = RawMail(row.data, row.source, row.mail_from, row.rcpt_tos, row.peer, row.helo)
    return run(raw, parse(raw.data), rt, Again(stored, row.status, keep_if_held))
