"""Step 8 for bulletins: many Deliveries written in one transaction, each personal (§3.8, R4.3).

A bulletin's fan-out writes its audience a batch at a time; here each subscriber's mail becomes
a Delivery on the `bulk` queue with its own header fields and its own VERP envelope sender,
which names the Delivery and so can only be signed once its id is known.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from gateway.core.vocabulary import Audience
from gateway.outbound.contexts import Context, checked
from gateway.outbound.outbox import BULK_QUEUE
from gateway.outbound.queries import NewDelivery, add_deliveries_as, new_delivery_ids


@dataclass(frozen=True)
class BulkMail:
    """One recipient's mail of a batch: its context, its Message-ID and header fields."""

    recipient: str
    context: Context
    message_id: str
    headers: dict[str, str]


def write_bulk(
    conn: Connection,
    *,
    template: str,
    mails: Sequence[BulkMail],
    now: datetime,
    return_path: Callable[[int], str],
    language: str = "en",
    enqueued: bool = True,
) -> list[int]:
    """The batch's Deliveries (ids in the order of `mails`), enqueued after the commit by the
    caller; `enqueued` False: left unenqueued, for the bulk processes to claim. A context that
    is not the template's raises WrongContext before anything is written.
    """
    ids = new_delivery_ids(conn, len(mails))
    rows = [
        (
            delivery_id,
            NewDelivery(
                sr_id=None,
                raw_mail_id=None,
                template=template,
                audience=Audience.customer,
                language=language,
                recipient=mail.recipient,
                context=checked(template, Audience.customer, mail.context),
                message_id=mail.message_id,
                in_reply_to=None,
                references="",
                auto_submitted="auto-generated",  # RFC 3834 §5: not a reply to anything
                queue=BULK_QUEUE,
                next_attempt_at=now,
                enqueued_at=now if enqueued else None,
                created_at=now,
                headers=mail.headers,
                mail_from=return_path(delivery_id),
            ),
        )
        for delivery_id, mail in zip(ids, mails, strict=True)
    ]
    add_deliveries_as(conn, rows)
    return ids
