"""§3.11–§3.13, R3.5, R5.5: SecureHands and scan work on an SR, where it meets the service
levels: the scheduling target starts at each session request, one per session (SecureHands,
§3.11.5), or at the signed SOW (scans, §3.13.3), and the session or scan scheduled meets it.

The command line (cli/securehands.py) and the mail commands (engagement_commands.py) both call
these, so the two never differ.
"""

from __future__ import annotations

from datetime import date, datetime

from gateway.securehands import clocks, scans, sessions, sows
from gateway.securehands.acts import Act, Done, Refused
from gateway.securehands.records import session
from gateway.securehands.records import sessions as sessions_of
from gateway.securehands.terms import SowTerms
from gateway.sla import service_levels
from gateway.storage.records import RequestRow, request_row

SCHEDULING = clocks.SCHEDULING
SOW_RESPONSE = "sow_response"


def agree_sow(act: Act, sr: RequestRow, terms: SowTerms) -> Done:
    """§3.11.2: a SecureHands (or Technical Baseline Assessment) SOW: its units reserved. A SOW
    agreed was answered: the SOW response target is met if `#sow-sent` did not meet it
    (§3.11.5). The scheduling target waits for the session request."""
    done = sows.agree(act, sr, terms)
    if service_levels.meet(act.conn, sr.id, SOW_RESPONSE, act.now):
        return Done(f"{done.detail}; Statement of Work response recorded", done.deliveries)
    return done


def order_scan(act: Act, sr: RequestRow, ordered_on: date, ips: int, max_ips: int) -> Done:
    """§3.13.3: the signed SOW of a scan starts its 3-working-day scheduling target."""
    done = scans.order(act, sr, ordered_on, ips, max_ips)
    due = _start_scheduling(act, sr)
    return Done(f"{done.detail}; scheduling due {due:%Y-%m-%d %H:%M} UTC", done.deliveries)


def request_session(act: Act, sr: RequestRow) -> Done:
    """§3.11.5, R5.5: scheduling is due 3 working days after the customer asked for a session:
    each session requested has its own target, whatever other sessions of the SR wait."""
    row = sessions.request(act, sr)
    due = _start_scheduling(act, sr, row.id)
    return Done(f"session {row.id} requested; scheduling due {due:%Y-%m-%d %H:%M} UTC")


def schedule(act: Act, sr: RequestRow, wanted: int | None, start: datetime, end: datetime) -> Done:
    """A session (or the scan) scheduled: the session's own scheduling target is met (the
    sessions still waiting keep theirs); the scan's target is met."""
    if sr.type == scans.SCAN_TYPE:
        done = scans.schedule(act, sr, start, end)
        service_levels.meet(act.conn, sr.id, SCHEDULING, act.now)
        return done
    done = sessions.schedule(act, sr, wanted, start, end)
    _meet_shared(act, sr)
    return done


def scheduled(act: Act, sr: RequestRow) -> Done:
    """A scan scheduled by telephone, without its time: the scheduling target is met."""
    if sr.type != scans.SCAN_TYPE:
        raise Refused("give the session's time: #scheduled 2026-12-01T09:00/12:00")
    if not service_levels.meet(act.conn, sr.id, SCHEDULING, act.now):
        raise Refused("no scheduling target is running")
    return Done("scheduling recorded")


def cancel(act: Act, sr: RequestRow, wanted: int | None, beyond_control: bool) -> Done:
    """§3.11.3: a session rearranged after a cause beyond control is to be scheduled again: its
    scheduling target starts anew (one still waiting keeps its own). A session cancelled before
    it was scheduled waits no more: its target ends (sessions.py)."""
    row = sessions.pick(act, sr, wanted, ("scheduled", "requested"))
    done = sessions.cancel(act, sr, row.id, beyond_control)
    _meet_shared(act, sr)
    if beyond_control and row.state == "scheduled":
        due = _start_scheduling(act, sr, row.id)
        return Done(f"{done.detail}; scheduling due {due:%Y-%m-%d %H:%M} UTC", done.deliveries)
    return done


def request_of_session(act: Act, session_id: int) -> RequestRow:
    """The SR a session belongs to (the command line names sessions by their number)."""
    found = session(act.conn, session_id)
    if found is None:
        raise Refused(f"no session {session_id}")
    return request_row(act.conn, found.sr_id)


def _meet_shared(act: Act, sr: RequestRow) -> None:
    """A scheduling target of the SR as a whole (armed before each session had its own) is met
    once no session of the SR waits to be scheduled."""
    if not any(s.state == "requested" for s in sessions_of(act.conn, sr_id=sr.id)):
        service_levels.meet(act.conn, sr.id, SCHEDULING, act.now)


def _start_scheduling(act: Act, sr: RequestRow, session_id: int | None = None) -> datetime:
    """The scheduling target from now, on the SR's Business Hours – Standard (R3.5): a
    session's own (it waits to be scheduled), or the scan's."""
    return service_levels.arm(
        act.conn, act.rt.settings, sr, SCHEDULING, act.now, act.now, session_id=session_id
    )
