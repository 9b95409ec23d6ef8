"""R2.1, R2.2: the SOC on an SR: answers relayed to the customer, internal notes, mail commands.

An analyst answers the notification mail from their own client. The newest part of the answer,
without the quoted notification and without the command lines, goes to the customer's contacts on
the SR from the gateway's address, threaded in their client. The first such answer is the SR's
Initial Response (§3.5.3). Commands are run for SOC staff only, and each is confirmed or refused.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection

from gateway.core.runtime import Runtime
from gateway.core.vocabulary import Audience
from gateway.outbound.contexts.requests import CommandResult, Outcome, SocAnswer
from gateway.outbound.notices import answer, in_customer_thread, reply_language, sendable_files
from gateway.requests.commands import Run, carry_out, refused
from gateway.requests.decision import Action, Decision, Facts, NotOnAnSR
from gateway.requests.queries import add_message, customer_participants, set_request
from gateway.sla import escalations, service_levels
from gateway.storage.records import RequestRow, request_row

ANSWER_LINE = "(answer)"  # the outcome of an answer itself (command_result_soc's subject)
NOTHING_TO_SEND = (
    "nothing was sent to the customer: the mail has no text of its own above the quoted "
    "notification, and no file"
)
UNKNOWN_COMMAND = (
    "unknown command: nothing of this mail was sent to the customer; it is kept on the SR as "
    "an internal note (send the answer again without this line to reach the customer)"
)


def answer_or_note(
    conn: Connection, rt: Runtime, facts: Facts, decision: Decision, stored: int
) -> tuple[str, tuple[tuple[int, str], ...]]:
    """Store the SOC's mail on its SR, run its commands, and relay an answer to the customer."""
    thread = facts.thread
    if thread is None:
        raise NotOnAnSR(f"{decision.rule}: the SOC's mail threads onto no SR")
    commanded = facts.commands.commands or facts.commands.unknown
    text = facts.commands.text if commanded else facts.reply_text
    internal = decision.action is Action.NOTE
    message = add_message(
        conn,
        sr_id=thread.sr_id,
        stored=stored,
        mail=facts.mail,
        author_kind="soc",
        reply_text=text,
        language=facts.language,
        now=facts.now,
        internal=internal,
    )
    # An answer of only a file goes out with the file; one of nothing of its own (its newest
    # part empty: only the quoted notification, a signature) is not sent, and its sender told.
    attached = sendable_files(conn, message) if facts.mail.attachments and not internal else []
    relayed = not internal and bool(text.strip() or attached)
    run = Run(conn, rt, facts.sender.address, facts.now, message=message, relayed=relayed)
    outcomes = [carry_out(run, thread.sr_id, command) for command in facts.commands.commands]
    outcomes += _unknown(facts, UNKNOWN_COMMAND)
    if not internal and not relayed and not commanded:
        outcomes.append(refused(ANSWER_LINE, NOTHING_TO_SEND))
    sr = request_row(conn, thread.sr_id)
    if relayed:
        answers = relay(conn, rt, sr, text, facts.sender.name, facts.now, attached)
        if answers:  # §3.5.5: an open escalation's requester hears the plan
            escalations.record_plan(conn, sr.id, facts.sender.address, facts.now)
        run.deliveries += answers
    set_request(conn, sr.id, last_soc_update_at=facts.now, updated_at=facts.now)
    service_levels.rearm_update(conn, rt.settings, sr, facts.now)
    if outcomes:
        run.deliveries.append(confirm(conn, rt, sr, facts, outcomes))
    return sr.public_id, tuple(run.deliveries)


def relay(
    conn: Connection,
    rt: Runtime,
    sr: RequestRow,
    text: str,
    analyst: str,
    now: datetime,
    files: list[int] | None = None,
) -> list[tuple[int, str]]:
    """The analyst's answer, with the files attached to it, to each of the customer's contacts
    on the SR (R2.1)."""
    language = reply_language(sr.language, sr.calendar, now)
    deliveries = [
        in_customer_thread(
            conn,
            rt,
            sr_id=sr.id,
            label=sr.public_id,
            template="soc_answer",
            recipient=contact.address,
            context=SocAnswer(
                sr_id=sr.public_id,
                title=sr.title,
                body=text,
                analyst=analyst,
                contact_name=contact.name,
                soc_phone=rt.settings.soc_phone,
                outside_hours=language.outside_hours,
                wanted_language=language.wanted,
                files=files or [],  # attachment ids, sent with the mail (workers/actors.py)
            ),
            now=now,
            language=language.code,
            auto_submitted="",  # a person wrote it
        )
        for contact in customer_participants(conn, sr.id)
    ]
    if deliveries and sr.initial_response_at is None:
        # §3.5.3: Initial Response is the first answer of a member of the SOC.
        set_request(conn, sr.id, initial_response_at=now)
        service_levels.meet(conn, sr.id, "initial_response", now)
    return deliveries


def confirm(
    conn: Connection, rt: Runtime, sr: RequestRow | None, facts: Facts, outcomes: list[Outcome]
) -> tuple[int, str]:
    """Each command confirmed to its sender, or refused with the reason (R2.2)."""
    context = CommandResult(
        sr_id=sr.public_id if sr else None,
        title=sr.title if sr else facts.mail.subject,
        outcomes=outcomes,
    )
    return answer(
        conn,
        rt,
        template="command_result",
        recipient=facts.sender.address,
        mail=facts.mail,
        context=context,
        now=facts.now,
        audience=Audience.soc,
        sr_id=sr.id if sr else None,
        label=sr.public_id if sr else "commands",
        auto_submitted="auto-replied",
    )


def refuse_all(facts: Facts, reason: str) -> list[Outcome]:
    return [refused(c.line, reason) for c in facts.commands.commands] + _unknown(facts)


def _unknown(facts: Facts, detail: str = "unknown command") -> list[Outcome]:
    return [refused(line, detail) for line in facts.commands.unknown]
