"""R2.1, R2.2: the SOC on an SR: answers relayed to the customer, internal notes, mail commands.

An analyst answers the notification mail from their own client. The newest part of the answer,
without the quoted notification and without the command lines, goes to the customer's contacts on
the SR from the gateway's address, threaded in their client. The first such answer is the SR's
Initial Response (§3.5.3). Commands are run for SOC staff only, and each is confirmed or refused.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from gateway import escalations, reviews, service_levels, store
from gateway.notices import answer, in_customer_thread, reply_language, sendable_files
from gateway.runtime import Runtime
from gateway.store import RequestRow
from gateway.triage import Action, Decision, Facts
from parsers.commands import Command

STATES = ("open", "waiting", "resolved", "closed")


@dataclass(frozen=True)
class Outcome:
    line: str
    done: bool
    detail: str


@dataclass
class Run:
    """One SOC mail's commands being carried out."""

    conn: Connection
    rt: Runtime
    sender: str
    now: datetime
    deliveries: list[tuple[int, str]] = field(default_factory=list)


def answer_or_note(
    conn: Connection, rt: Runtime, facts: Facts, decision: Decision, stored: int
) -> tuple[str, tuple[tuple[int, str], ...]]:
    """Store the SOC's mail on its SR, run its commands, and relay an answer to the customer."""
    thread = facts.thread
    assert thread is not None  # triage sends only SOC mail on an SR here
    commanded = facts.commands.commands or facts.commands.unknown
    text = facts.commands.text if commanded else facts.reply_text
    internal = decision.action is Action.NOTE
    message = store.add_message(
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
    run = Run(conn, rt, facts.sender.address, facts.now)
    outcomes = [carry_out(run, thread.sr_id, command) for command in facts.commands.commands]
    outcomes += _unknown(facts)
    sr = store.request_row(conn, thread.sr_id)
    if not internal and text.strip():
        attached = sendable_files(conn, message) if facts.mail.attachments else []
        run.deliveries += relay(conn, rt, sr, text, facts.sender.name, facts.now, attached)
    store.set_request(conn, sr.id, last_soc_update_at=facts.now, updated_at=facts.now)
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
            recipient=address,
            context={
                "sr_id": sr.public_id,
                "title": sr.title,
                "body": text,
                "analyst": analyst,
                "contact_name": name,
                "soc_phone": rt.settings.soc_phone,
                "outside_hours": language.outside_hours,
                "wanted_language": language.wanted,
                "files": files or [],  # attachment ids, sent with the mail (workers/actors.py)
            },
            now=now,
            language=language.code,
            auto_submitted="",  # a person wrote it
        )
        for address, name in store.customer_participants(conn, sr.id)
    ]
    if deliveries and sr.initial_response_at is None:
        # §3.5.3: Initial Response is the first answer of a member of the SOC.
        store.set_request(conn, sr.id, initial_response_at=now)
        service_levels.meet(conn, sr.id, "initial_response", now)
    return deliveries


def confirm(
    conn: Connection, rt: Runtime, sr: RequestRow | None, facts: Facts, outcomes: list[Outcome]
) -> tuple[int, str]:
    """Each command confirmed to its sender, or refused with the reason (R2.2)."""
    context = {
        "sr_id": sr.public_id if sr else None,
        "title": sr.title if sr else facts.mail.subject,
        "outcomes": [{"line": o.line, "done": o.done, "detail": o.detail} for o in outcomes],
    }
    return answer(
        conn,
        rt,
        template="command_result",
        recipient=facts.sender.address,
        mail=facts.mail,
        context=context,
        now=facts.now,
        audience="soc",
        sr_id=sr.id if sr else None,
        label=sr.public_id if sr else "commands",
        auto_submitted="auto-replied",
    )


def refuse_all(facts: Facts, reason: str) -> list[Outcome]:
    return [Outcome(c.line, False, reason) for c in facts.commands.commands] + _unknown(facts)


def _unknown(facts: Facts) -> list[Outcome]:
    return [Outcome(line, False, "unknown command") for line in facts.commands.unknown]


# --- the commands --------------------------------------------------------------------------------


def carry_out(run: Run, sr_id: int, command: Command) -> Outcome:
    sr = store.request_row(run.conn, sr_id)
    return COMMANDS[command.name](run, sr, command)


def _priority(run: Run, sr: RequestRow, command: Command) -> Outcome:
    if command.argument not in ("1", "2", "3", "4"):
        return Outcome(command.line, False, "the priority is a number from 1 to 4")
    priority = int(command.argument)
    if priority == sr.priority:
        return Outcome(command.line, True, f"already Priority {priority}")
    store.set_request(run.conn, sr.id, priority=priority, updated_at=run.now)
    changed = store.request_row(run.conn, sr.id)
    service_levels.retarget(run.conn, run.rt.settings, changed, run.now)  # R3.4
    if priority <= 2:
        run.deliveries += reviews.notify_tam(run.conn, run.rt, changed, run.now)
    return Outcome(command.line, True, f"Priority {sr.priority} -> {priority}; targets recomputed")


def _state(run: Run, sr: RequestRow, command: Command) -> Outcome:
    state = command.argument.strip().lower()
    if state not in STATES:
        return Outcome(command.line, False, f"the state is one of {', '.join(STATES)}")
    values: dict[str, Any] = {"state": state, "updated_at": run.now}
    if state == "closed":
        values["closed_at"] = run.now
        service_levels.stop_all(run.conn, sr.id)
        escalations.close_escalation(run.conn, sr.id, run.sender, "SR closed", run.now)
    store.set_request(run.conn, sr.id, **values)  # the not-updated clock: answer_or_note
    return Outcome(command.line, True, f"state {sr.state} -> {state}")


def _assign(run: Run, sr: RequestRow, command: Command) -> Outcome:
    who = run.sender if command.argument.strip().lower() in ("", "me") else command.argument
    who = who.strip().lower()
    if not store.is_staff(run.conn, who):
        return Outcome(command.line, False, f"{who} is not SOC staff")
    store.set_request(run.conn, sr.id, assigned_to=who, updated_at=run.now)
    return Outcome(command.line, True, f"assigned to {who}")


def _escalate(run: Run, sr: RequestRow, command: Command) -> Outcome:
    # §3.5.5: the customer asks the SOC (by telephone); the SOC records the escalation.
    run.deliveries += escalations.open_escalation(
        run.conn,
        run.rt,
        sr,
        source="soc",
        requested_by=run.sender,
        reason=command.argument,
        now=run.now,
    )
    return Outcome(command.line, True, "escalated to Duty Management")


def _deescalate(run: Run, sr: RequestRow, command: Command) -> Outcome:
    if not escalations.close_escalation(run.conn, sr.id, run.sender, command.argument, run.now):
        return Outcome(command.line, False, "no open escalation")
    return Outcome(command.line, True, "escalation closed")


def _note(run: Run, sr: RequestRow, command: Command) -> Outcome:
    return Outcome(command.line, True, "kept as an internal note")


def _milestone(kind: str, start: bool, what: str) -> Callable[[Run, RequestRow, Command], Outcome]:
    """SecureHands and scan milestones the SOC records (§3.11.5, §3.13.3, R3.5)."""

    def record(run: Run, sr: RequestRow, command: Command) -> Outcome:
        if not service_levels.applies(kind, sr.type):
            return Outcome(command.line, False, f"a {sr.type} SR has no {kind} target")
        if start:
            due = service_levels.arm(run.conn, run.rt.settings, sr, kind, run.now, run.now)
            return Outcome(command.line, True, f"{what}; due {due:%Y-%m-%d %H:%M} UTC")
        if not service_levels.meet(run.conn, sr.id, kind, run.now):
            return Outcome(command.line, False, f"no {kind} target is running")
        return Outcome(command.line, True, what)

    return record


COMMANDS: dict[str, Callable[[Run, RequestRow, Command], Outcome]] = {
    "priority": _priority,
    "state": _state,
    "assign": _assign,
    "escalate": _escalate,
    "deescalate": _deescalate,
    "note": _note,
    "sow_sent": _milestone("sow_response", False, "Statement of Work response recorded"),
    "sow_agreed": _milestone("scheduling", True, "SOW agreed: scheduling target started"),
    "scheduled": _milestone("scheduling", False, "scheduling recorded"),
}
