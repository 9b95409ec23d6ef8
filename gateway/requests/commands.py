"""R2.2: the mail commands of SOC staff on an SR, as a table: each carried out, then confirmed
or refused with its reason (requests/soc.py `confirm`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection

from gateway.core.runtime import Runtime
from gateway.core.vocabulary import State
from gateway.directory.queries import is_staff
from gateway.outbound.contexts.requests import Outcome
from gateway.requests import engagement_commands
from gateway.requests.queries import StateChange, record_state, set_request
from gateway.sla import escalations, reviews, service_levels
from gateway.storage.records import RequestRow, request_row
from parsers.commands import Command

STATES = tuple(State)


@dataclass
class Run:
    """One SOC mail's commands being carried out."""

    conn: Connection
    rt: Runtime
    sender: str
    now: datetime
    deliveries: list[tuple[int, str]] = field(default_factory=list)
    message: int | None = None  # the stored message the commands came in (its files: #report)
    relayed: bool = False  # its text goes to the customer


def done(command: Command, detail: str) -> Outcome:
    return Outcome(line=command.line, done=True, detail=detail)


def refused(line: str, detail: str) -> Outcome:
    return Outcome(line=line, done=False, detail=detail)


def carry_out(run: Run, sr_id: int, command: Command) -> Outcome:
    sr = request_row(run.conn, sr_id)
    return COMMANDS[command.name](run, sr, command)


def _priority(run: Run, sr: RequestRow, command: Command) -> Outcome:
    if command.argument not in ("1", "2", "3", "4"):
        return refused(command.line, "the priority is a number from 1 to 4")
    priority = int(command.argument)
    if priority == sr.priority:
        return done(command, f"already Priority {priority}")
    set_request(run.conn, sr.id, priority=priority, updated_at=run.now)
    changed = request_row(run.conn, sr.id)
    service_levels.retarget(run.conn, run.rt.settings, changed, run.now)  # R3.4
    if priority <= 2:
        run.deliveries += reviews.notify_tam(run.conn, run.rt, changed, run.now)
    return done(command, f"Priority {sr.priority} -> {priority}; targets recomputed")


def _state(run: Run, sr: RequestRow, command: Command) -> Outcome:
    wanted = command.argument.strip().lower()
    if wanted not in STATES:
        return refused(command.line, f"the state is one of {', '.join(STATES)}")
    state = State(wanted)
    closed = state == State.closed
    if closed:
        service_levels.stop_all(run.conn, sr.id)
        escalations.close_escalation(run.conn, sr.id, run.sender, "SR closed", run.now)
    # the not-updated clock is rearmed by answer_or_note, once for the whole mail
    set_request(
        run.conn, sr.id, state=state, updated_at=run.now, closed_at=run.now if closed else None
    )
    record_state(run.conn, StateChange(sr.id, run.now, state, run.sender))
    return done(command, f"state {sr.state} -> {state}")


def _assign(run: Run, sr: RequestRow, command: Command) -> Outcome:
    who = run.sender if command.argument.strip().lower() in ("", "me") else command.argument
    who = who.strip().lower()
    if not is_staff(run.conn, who):
        return refused(command.line, f"{who} is not SOC staff")
    set_request(run.conn, sr.id, assigned_to=who, updated_at=run.now)
    return done(command, f"assigned to {who}")


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
    return done(command, "escalated to Duty Management")


def _deescalate(run: Run, sr: RequestRow, command: Command) -> Outcome:
    if not escalations.close_escalation(run.conn, sr.id, run.sender, command.argument, run.now):
        return refused(command.line, "no open escalation")
    return done(command, "escalation closed")


def _note(run: Run, sr: RequestRow, command: Command) -> Outcome:
    return done(command, "kept as an internal note")


def _milestone(kind: str, start: bool, what: str) -> Callable[[Run, RequestRow, Command], Outcome]:
    """SecureHands and scan milestones the SOC records (§3.11.5, §3.13.3, R3.5)."""

    def record(run: Run, sr: RequestRow, command: Command) -> Outcome:
        if not service_levels.applies(kind, sr.type):
            return refused(command.line, f"a {sr.type} SR has no {kind} target")
        if start:
            due = service_levels.arm(run.conn, run.rt.settings, sr, kind, run.now, run.now)
            return done(command, f"{what}; due {due:%Y-%m-%d %H:%M} UTC")
        if not service_levels.meet(run.conn, sr.id, kind, run.now):
            return refused(command.line, f"no {kind} target is running")
        return done(command, what)

    return record


COMMANDS: dict[str, Callable[[Run, RequestRow, Command], Outcome]] = {
    "priority": _priority,
    "state": _state,
    "assign": _assign,
    "escalate": _escalate,
    "deescalate": _deescalate,
    "note": _note,
    "sow_sent": _milestone("sow_response", False, "Statement of Work response recorded"),
    # §3.11–§3.13: SOWs, sessions, units, queries, scans; the scheduling target starts at the
    # session request (SecureHands) or the signed SOW (scans)
    **engagement_commands.COMMANDS,
}
