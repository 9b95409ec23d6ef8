"""Step 8 for the Support Update Service: its mails, each a Delivery written in the transaction
that decided it (outbound/notices.py), English only (R1.11, §3.8): the contact's confirmation,
the admins' notice of a request (its Message-ID kept, so that an answer names the request), the
result of an admin's mail command, the report of a suspension (R4.4)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, select

from gateway.core.runtime import Runtime
from gateway.core.vocabulary import Audience
from gateway.outbound.contexts.sus import (
    BounceLine,
    ProductLine,
    SusCommand,
    SusConfirmation,
    SusRequest,
    SusSuspended,
)
from gateway.outbound.notices import alert, answer
from gateway.storage.tables import DELIVERIES
from gateway.sus import queries
from gateway.sus.queries import ContactRow

Written = tuple[int, str]


def confirmation(
    conn: Connection,
    rt: Runtime,
    contact: ContactRow,
    outcome: str,
    done: Sequence[ProductLine] = (),
    refused: Sequence[ProductLine] = (),
    *,
    now: datetime,
    reason: str = "",
    in_reply_to: str | None = None,
    references: Sequence[str] = (),
    raw_mail_id: int | None = None,
) -> Written:
    """R4.2: the contact's one confirmation of what its request came to, in its own thread."""
    settings = rt.settings
    context = SusConfirmation(
        contact_name=contact.name,
        outcome=outcome,
        done=list(done),
        refused=list(refused),
        reason=reason,
        sus_address=settings.sus_mailbox,
        soc_phone=settings.soc_phone,
    )
    return answer(
        conn,
        rt,
        template="sus_confirmation",
        recipient=contact.email,
        mail=None,
        context=context,
        now=now,
        language="en",  # R1.11, §3.8: the Support Update Service is English only
        label="sus",
        raw_mail_id=raw_mail_id,
        in_reply_to=in_reply_to,
        references=[*references, in_reply_to] if in_reply_to else list(references),
    )


def request_notices(
    conn: Connection, rt: Runtime, request_id: int, context: SusRequest, now: datetime, stored: int
) -> list[Written]:
    """R4.2: each admin is told of a request waiting for approval; the notices' Message-IDs are
    kept (subscription_request_refs): an admin's `#approve` answers one of them."""
    written = []
    for admin in rt.settings.admin_addresses:
        delivery = alert(
            conn,
            rt,
            template="sus_request",
            recipient=admin,
            context=context,
            now=now,
            audience=Audience.staff,
            label=f"sus-request-{request_id}",
            raw_mail_id=stored,
        )
        message_id = conn.scalar(
            select(DELIVERIES.c.message_id).where(DELIVERIES.c.id == delivery[0])
        )
        queries.add_request_ref(conn, str(message_id), request_id)
        written.append(delivery)
    return written


def command_result(
    conn: Connection,
    rt: Runtime,
    admin: str,
    result: SusCommand,
    now: datetime,
    in_reply_to: str | None,
    stored: int,
) -> Written:
    """R4.2: the admin's mail command confirmed, or refused with the reason."""
    return answer(
        conn,
        rt,
        template="sus_command",
        recipient=admin,
        mail=None,
        context=result,
        now=now,
        audience=Audience.staff,
        label="sus-command",
        raw_mail_id=stored,
        in_reply_to=in_reply_to,
        references=[in_reply_to] if in_reply_to else [],
    )


def suspension_report(
    conn: Connection,
    rt: Runtime,
    contact: ContactRow,
    products: list[str],
    score: float,
    bounces: list[BounceLine],
    now: datetime,
) -> list[Written]:
    """R4.4: the admins hear at once who was suspended and why (one mail per suspension)."""
    settings = rt.settings
    context = SusSuspended(
        contact=contact.email,
        contact_name=contact.name,
        customer=contact.customer,
        products=products,
        score=score,
        threshold=settings.sus_bounce_score_threshold,
        bounces=bounces,
    )
    return [
        alert(
            conn,
            rt,
            template="sus_suspended",
            recipient=admin,
            context=context,
            now=now,
            audience=Audience.staff,
            label="sus-suspended",
        )
        for admin in settings.admin_addresses
    ]
