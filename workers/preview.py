"""A bulletin's mail as a subscriber will get it, rendered and composed but sent to nobody
(`gateway bulletins preview`): the same context, templates, headers and composition as the
fan-out's mails, for a sample subscriber."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.core.runtime import Runtime
from gateway.core.vocabulary import Audience
from gateway.outbound.contexts import checked
from gateway.outbound.sending import Claimed
from gateway.storage.db import transaction
from gateway.sus import bulletin_queries, verp
from gateway.sus.addressing import TEMPLATE, mail_for
from gateway.sus.bulletins import BulletinError
from gateway.sus.queries import Subscriber
from workers.composer import as_bytes, compose
from workers.render import Renderer

SAMPLE = Subscriber(subscription_id=0, contact_id=0, address="subscriber@example.com", name="")


@dataclass(frozen=True)
class Preview:
    subject: str
    text: str
    html: str
    eml: bytes  # the whole message, as the relay would get it


def preview(rt: Runtime, bulletin_id: int, renderer: Renderer | None = None) -> Preview:
    with transaction(rt.sessions, readonly=True) as conn:
        bulletin = bulletin_queries.bulletin_content(conn, bulletin_id)
    if bulletin is None:
        raise BulletinError(f"no bulletin {bulletin_id}")
    try:
        mail = mail_for(bulletin, SAMPLE, rt.settings, rt.keys)
    except ValueError as exc:
        raise BulletinError(str(exc)) from None
    context = checked(TEMPLATE, Audience.customer, mail.context)
    rendered = (renderer or Renderer()).render(TEMPLATE, Audience.customer, "en", context)
    delivery = Claimed(
        id=0,
        template=TEMPLATE,
        audience=Audience.customer,
        language="en",
        recipient=mail.recipient,
        context=context,
        message_id=mail.message_id,
        in_reply_to=None,
        references="",
        auto_submitted="auto-generated",
        attempts=0,
        headers=mail.headers,
        mail_from=verp.return_path(0, rt.keys, rt.settings.domain),
    )
    message = compose(delivery, rendered, rt.settings)
    message["Return-Path"] = f"<{delivery.mail_from}>"  # what the receiving MTA would add
    return Preview(rendered.subject, rendered.text, rendered.html or "", as_bytes(message))
