"""What intake kept without opening anything (R1.8, R6.3): the review queue and the quarantine,
as the command line and the admin pages show them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.core.hours import iso
from gateway.storage.models import StoredMail
from parsers.headers import header_size
from parsers.mail import parse

MAX_TEXT_SHOWN = 20_000  # characters of a held mail's text in `review show`


def held_mails(
    session: Session, *, status: str = "review", limit: int = 200
) -> list[dict[str, Any]]:
    """The review queue (R1.8): mail that opened nothing, with the reason."""
    query = (
        select(
            StoredMail.id,
            StoredMail.sender,
            StoredMail.subject,
            StoredMail.reason,
            StoredMail.received_at,
            StoredMail.source,
            StoredMail.message_id,
            StoredMail.size,
            StoredMail.status,
            StoredMail.failed_recipients,
            StoredMail.authentication,
        )
        .where(StoredMail.status == status)
        .order_by(StoredMail.id.desc())
        .limit(limit)
    )
    return [
        {
            "id": row.id,
            "from": row.sender,
            "subject": row.subject,
            "reason": row.reason,
            "received_at": iso(row.received_at),
            "source": row.source,
            "message_id": row.message_id,
            "size": row.size,
            "status": row.status,
            "failed_recipients": row.failed_recipients,  # a bounce's, for suspending addresses
            "authentication": row.authentication,  # the sender's verdict (R6.4)
        }
        for row in session.execute(query)
    ]


def stored_mail(session: Session, stored_id: int) -> dict[str, Any] | None:
    """One stored mail as kept: envelope, reason, verdict, its header block and parse defects."""
    row = session.get(StoredMail, stored_id)
    if row is None:
        return None
    raw = row.raw
    head = raw[: header_size(raw) + 4].replace(b"\r\n", b"\n").partition(b"\n\n")[0]
    return {
        "id": row.id,
        "status": row.status,
        "reason": row.reason,
        "source": row.source,
        "received_at": iso(row.received_at),
        "mail_from": row.mail_from,
        "rcpt_tos": row.rcpt_tos,
        "peer": row.peer,
        "from": row.sender,
        "subject": row.subject,
        "message_id": row.message_id,
        "size": row.size,
        "authentication": row.authentication,
        "failed_recipients": row.failed_recipients,
        "headers": head[:16_384].decode("utf-8", "replace"),
        "defects": list(parse(raw).defects),
    }


def held_mail(session: Session, stored_id: int) -> dict[str, Any] | None:
    """One mail of the review queue as `stored_mail` shows it, with the text a reviewer reads."""
    shown = stored_mail(session, stored_id)
    if shown is None:
        return None
    mail = parse(session.get_one(StoredMail, stored_id).raw)
    files = [{"filename": a.filename, "size": a.size} for a in mail.attachments]
    return {**shown, "text": mail.text[:MAX_TEXT_SHOWN], "attachments": files}
