"""Step 7 for the Support Update Service: a contact's request, an unsubscribe by its token, an
admin's answer, a bounce or a complaint, handed to gateway/sus with what it needs of the mail
(R4.2–R4.4). The products a request names are found as an SR's are (entitlements.py). None of
these opens an SR, and no bounce or complaint is answered (R6.1)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection

from gateway.core.runtime import Runtime
from gateway.outbound.addresses import addressable
from gateway.requests import entitlements
from gateway.requests.decision import Action, Facts, NotFromAContact
from gateway.sus import approvals, bounces
from gateway.sus import requests as sus_requests
from gateway.sus.bounces import Returning
from gateway.sus.requests import Asking, Wanted
from parsers.returns import Returned

Deliveries = list[tuple[int, str]]


def subscription(conn: Connection, rt: Runtime, facts: Facts, stored: int) -> Deliveries:
    """R4.2: the products the mail names, judged as for an SR, or none named: all of them."""
    sender, asked = facts.sender, facts.sus.asked
    if sender.customer_id is None or sender.contact_id is None or sender.calendar is None:
        raise NotFromAContact(f"{sender.address} is no contact: it cannot subscribe")
    if asked is None:
        raise NotFromAContact(f"{sender.address}: the mail asks nothing of SUS")
    today = facts.now.astimezone(sender.calendar.zone).date()
    text = f"{facts.mail.subject}\n{facts.reply_text}"
    judged, named = entitlements.judge_named(conn, sender.customer_id, text, today)
    wanted = [Wanted(j.product_id, j.coverage.product, j.coverage.status) for j in judged]
    asking = _asking(facts, stored)
    return sus_requests.ask(conn, rt, asking, sender.contact_id, asked.action, wanted, named)


def unsubscribe(conn: Connection, rt: Runtime, facts: Facts, stored: int) -> Deliveries:
    """RFC 2369: `unsubscribe TOKEN`, whoever sends it."""
    subscription_id = facts.sus.token_subscription
    if subscription_id is None:
        return []
    return sus_requests.unsubscribe_by_token(conn, rt, _asking(facts, stored), subscription_id)


def approval(conn: Connection, rt: Runtime, facts: Facts, stored: int) -> Deliveries:
    request_id, commands = facts.sus.answers_request, facts.sus.admin_commands
    if request_id is None or commands is None:
        return []
    return approvals.answer(conn, rt, _asking(facts, stored), request_id, commands)


def bounce(conn: Connection, rt: Runtime, facts: Facts, stored: int) -> Deliveries:
    return bounces.bounce(conn, rt, _returning(facts, stored))


def complaint(conn: Connection, rt: Runtime, facts: Facts, stored: int) -> Deliveries:
    return bounces.complaint(conn, rt, _returning(facts, stored))


CARRY_OUT: dict[Action, Callable[[Connection, Runtime, Facts, int], Deliveries]] = {
    Action.SUBSCRIPTION: subscription,
    Action.UNSUBSCRIBE: unsubscribe,
    Action.APPROVAL: approval,
    Action.BOUNCE: bounce,
    Action.COMPLAINT: complaint,
}


def _asking(facts: Facts, stored: int) -> Asking:
    mail = facts.mail
    return Asking(
        stored=stored,
        address=facts.sender.address,
        message_id=mail.message_id,
        references=mail.references,
        subject=mail.subject,
        text=facts.reply_text,
        now=facts.now,
        # R6.1: within the automatic-reply limits, to a plain mailbox, never to automatic mail
        answerable=facts.autoreply_allowed
        and facts.automatic is None
        and addressable(facts.sender.address),
    )


def _returning(facts: Facts, stored: int) -> Returning:
    report = facts.mail.report
    return Returning(
        stored=stored,
        now=facts.now,
        message_id=facts.mail.message_id,
        reason=facts.bounce or (report.reason if report else ""),
        return_paths=facts.sus.return_paths,
        failed=report.failed if report else (),
        delayed=report.delayed if report else (),
        returned=facts.sus.returned or Returned(),
    )
