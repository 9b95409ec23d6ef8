"""§3.11.3, §3.11.5, §3.11.6: SecureHands sessions: requested, scheduled (start and planned end,
in the customer's office time), delivered (the units taken and the completion statement sent),
cancelled by the customer, rearranged after a cause beyond either party's control, not attended.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from gateway.securehands import clocks, ledger, notices, statements
from gateway.securehands.acts import Act, Done, Refused
from gateway.securehands.balance import FORFEIT, PENDING, ZERO
from gateway.securehands.queries import customer, message_id_of
from gateway.securehands.records import (
    SessionRow,
    active_sow,
    add_session,
    save_session,
    session,
    sessions,
    sow,
)
from gateway.securehands.units import Count, count, shown
from gateway.storage.records import RequestRow

NOTICE = timedelta(hours=16)  # §3.11.3: two working days of Business Hours – Standard


def request(act: Act, sr: RequestRow) -> SessionRow:
    """§3.11.5: the customer asks for a session of the agreed SOW (its scheduling target is the
    caller's: requests/engagements.py)."""
    agreed = active_sow(act.conn, sr.id)
    if agreed is None:
        raise Refused(f"no SOW is agreed on {sr.public_id}: #sow-agreed units=N first")
    row = SessionRow(0, agreed.id, sr.id, sr.customer_id, "requested", act.now, act.by)
    return replace(row, id=add_session(act.conn, row))


def pick(act: Act, sr: RequestRow, wanted: int | None, states: tuple[str, ...]) -> SessionRow:
    """The session named, or the SR's oldest one in one of `states`."""
    if wanted is not None:
        found = session(act.conn, wanted)
        if found is None or found.sr_id != sr.id:
            raise Refused(f"no session {wanted} on {sr.public_id}")
        if found.state not in states:
            raise Refused(f"session {wanted} is {found.state}, not {' or '.join(states)}")
        return found
    for row in sessions(act.conn, sr_id=sr.id):
        if row.state in states:
            return row
    raise Refused(f"no session of {sr.public_id} is {' or '.join(states)}")


def schedule(act: Act, sr: RequestRow, wanted: int | None, start: datetime, end: datetime) -> Done:
    row = pick(act, sr, wanted, ("requested", "scheduled"))
    changed = replace(row, state="scheduled", planned_start=start, planned_end=end)
    save_session(act.conn, replace(changed, updated_by=act.by), row.state)
    clocks.stop_scheduling(act.conn, row.id, act.now)  # §3.11.5: this session is scheduled
    span = notices.when(start, end, sr.calendar)
    return Done(
        f"session {row.id} scheduled: {span['day']} {span['start']}–{span['end']} {span['zone']}"
    )


def planned(act: Act, sr: RequestRow, row: SessionRow) -> Count:
    """§3.11.3: the units a scheduled session is planned to take (fixed, or its duration)."""
    if row.planned_start is None or row.planned_end is None:
        raise Refused(f"session {row.id} has no planned time")
    terms = sow(act.conn, row.sow_id)
    return count(
        row.planned_start,
        row.planned_end,
        sr.calendar,
        fixed=terms.fixed_units,
        rate=terms.out_of_hours_rate,
    )


def deliver(act: Act, sr: RequestRow, wanted: int | None, start: datetime, end: datetime) -> Done:
    """§3.11.6: the session took place: its units are taken (pending) and the completion
    statement goes to the requester; it counts as accepted 2 working days later."""
    if end > act.now:
        raise Refused("a session is recorded once it has ended")
    row = pick(act, sr, wanted, ("scheduled", "requested"))
    terms = sow(act.conn, row.sow_id)
    counted = count(start, end, sr.calendar, fixed=terms.fixed_units, rate=terms.out_of_hours_rate)
    owner = customer(act.conn, sr.customer_id)
    ledger.take(act, owner, PENDING, counted.units, terms.id, row.id)
    accept_at = sr.calendar.add_working_days(act.now, clocks.ACCEPT_AFTER_DAYS)
    done = replace(
        row,
        state="delivered",
        actual_start=start,
        actual_end=end,
        units=counted.units,
        counting=counted.as_json(),
        statement_at=act.now,
        accept_at=accept_at,
        updated_by=act.by,
    )
    mail = statements.statement(act, sr, done, counted, ledger.figures(act, owner), accept_at)
    save_session(
        act.conn, replace(done, statement_message_id=message_id_of(act.conn, mail[0])), row.state
    )
    clocks.arm_acceptance(act.conn, row.id, sr.id, act.now, sr.calendar)
    clocks.stop_scheduling(act.conn, row.id, act.now)  # delivered: it waits no more
    return Done(
        f"session {row.id} delivered: {shown(counted.units)} units pending; statement sent, "
        f"accepted {notices.moment(accept_at, sr.calendar)} unless queried",
        (mail,),
    )


def cancel(act: Act, sr: RequestRow, wanted: int | None, beyond_control: bool) -> Done:
    """§3.11.3: cancelled by the customer (less than 2 working days before the start: its units
    are forfeited), or beyond either party's control (rearranged, nothing forfeited)."""
    row = pick(act, sr, wanted, ("scheduled", "requested"))
    if beyond_control:
        back = replace(row, state="requested", planned_start=None, planned_end=None)
        note = "cancelled for reasons beyond either party's control"
        save_session(act.conn, replace(back, note=note, updated_by=act.by), row.state)
        return Done(f"session {row.id} to be rearranged (beyond control): nothing forfeited")
    if row.planned_start is not None and _late(sr, row.planned_start, act.now):
        return forfeit(act, sr, row, "cancelled_late")
    released = ZERO
    if row.planned_start is not None:
        owner = customer(act.conn, sr.customer_id)
        released = ledger.release(act, owner, row.sow_id, planned(act, sr, row).units, "cancelled")
    save_session(
        act.conn,
        replace(row, state="cancelled", note="cancelled by the customer", updated_by=act.by),
        row.state,
    )
    clocks.stop_scheduling(act.conn, row.id, act.now)  # if it still waited: it waits no more
    return Done(f"session {row.id} cancelled in time: {shown(released)} units released")


def _late(sr: RequestRow, start: datetime, now: datetime) -> bool:
    return sr.calendar.working_time_between(now, start) < NOTICE


def no_show(act: Act, sr: RequestRow, wanted: int | None) -> Done:
    row = pick(act, sr, wanted, ("scheduled",))
    if row.planned_start is not None and row.planned_start > act.now:
        raise Refused(f"session {row.id} has not started yet")
    return forfeit(act, sr, row, "no_show")


def forfeit(act: Act, sr: RequestRow, row: SessionRow, reason: str) -> Done:
    """§3.11.3: the planned units are forfeited at once, and the customer is told."""
    counted = planned(act, sr, row)
    owner = customer(act.conn, sr.customer_id)
    ledger.take(act, owner, FORFEIT, counted.units, row.sow_id, row.id)
    done = replace(
        row,
        state="forfeited",
        units=counted.units,
        counting=counted.as_json(),
        decided_at=act.now,
        note=reason,
        updated_by=act.by,
    )
    save_session(act.conn, done, row.state)
    mail = statements.forfeited(act, sr, done, reason, ledger.figures(act, owner))
    why = "cancelled less than 2 working days before" if reason != "no_show" else "not attended"
    return Done(f"session {row.id} {why}: {shown(counted.units)} units forfeited", (mail,))
