"""§3.13, R5.6: Security Assessment Scan engagements: ordered (credits valid 12 months, at most
25 IPs unless agreed), two scans scheduled and reported, the report review, the remediation scan
requested within 30 days and performed within 45 days of it, and reschedules with 2 business
days' notice; what breaks a rule is flagged to the SOC."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta

from gateway.outbound.contexts.securehands import ScanFlag, ScanReminder
from gateway.securehands import clocks, notices
from gateway.securehands.acts import Act, Deliveries, Done, Refused
from gateway.securehands.queries import stop_clocks
from gateway.securehands.records import ScanRow, add_scan, save_scan, scan_of
from gateway.securehands.units import expiry
from gateway.storage.records import RequestRow

SCAN_TYPE = "vulnerability_assessment"
MAX_IPS = 25  # §3.13.1: more upon request, subject to agreement with the SOC
NOTICE = timedelta(hours=16)  # §3.13.1: two business days (Business Hours – Standard)


def order(act: Act, sr: RequestRow, ordered_on: date, ips: int, max_ips: int = MAX_IPS) -> Done:
    """The engagement ordered and its SOW signed: credits valid 12 months from the order."""
    if sr.type != SCAN_TYPE:
        raise Refused(f"{sr.public_id} is an SR of type {sr.type}, not a Security Assessment Scan")
    if scan_of(act.conn, sr.id) is not None:
        raise Refused(f"{sr.public_id} has its scan engagement already")
    if ips < 1 or ips > max_ips:
        raise Refused(
            f"{ips} IPs: 1 to {max_ips} (more than {MAX_IPS} when agreed: max-ips=N, §3.13.1)"
        )
    today = act.now.astimezone(sr.calendar.zone).date()
    if ordered_on > today:  # its credits would stay valid beyond 12 months from now
        raise Refused(f"an order is dated today ({today}) or earlier, not {ordered_on}")
    row = ScanRow(
        id=0,
        sr_id=sr.id,
        customer_id=sr.customer_id,
        ordered_on=ordered_on,
        expires_on=expiry(ordered_on),
        ips=ips,
        max_ips=max_ips,
        scan=1,
        scan_start=None,
        scan_end=None,
        reports=[],
        report_at=None,
        reviewed_on=None,
        remediation_requested_at=None,
        created_at=act.now,
    )
    add_scan(act.conn, row)
    until = notices.last_day(row.expires_on)
    return Done(f"scan engagement: {ips} IPs, credits valid until {until}")


def engagement(act: Act, sr: RequestRow) -> ScanRow:
    row = scan_of(act.conn, sr.id)
    if row is None:
        raise Refused(f"no scan engagement on {sr.public_id}: #sow-agreed ips=N first")
    return row


def schedule(act: Act, sr: RequestRow, start: datetime, end: datetime) -> Done:
    """Scan 1, or the remediation scan within 45 days of the review (§3.13.1)."""
    row = engagement(act, sr)
    _within(sr, row, start)
    save_scan(act.conn, replace(row, scan_start=start, scan_end=end))
    return Done(f"scan {row.scan} scheduled: {notices.moment(start, sr.calendar)}")


def _within(sr: RequestRow, row: ScanRow, start: datetime) -> None:
    day = start.astimezone(sr.calendar.zone).date()
    if day < row.ordered_on:
        raise Refused(f"the scan cannot come before its order of {row.ordered_on}")
    if day >= row.expires_on:
        raise Refused(f"the credits are valid until {notices.last_day(row.expires_on)}")
    if row.scan == 2 and row.reviewed_on is not None:
        _, perform_by = clocks.remediation_dates(row.reviewed_on)
        if day > perform_by:
            raise Refused(f"the remediation scan is to be performed by {perform_by} (§3.13.1)")


def reschedule(act: Act, sr: RequestRow, start: datetime, end: datetime) -> Done:
    """A scheduled scan moved; asked less than 2 business days before it, the SOC is told."""
    row = engagement(act, sr)
    if row.scan_start is None:
        raise Refused(f"scan {row.scan} is not scheduled yet")
    _within(sr, row, start)
    late = sr.calendar.working_time_between(act.now, row.scan_start) < NOTICE
    save_scan(act.conn, replace(row, scan_start=start, scan_end=end))
    detail = f"scan {row.scan} rescheduled: {notices.moment(start, sr.calendar)}"
    if not late:
        return Done(detail)
    was = notices.moment(row.scan_start, sr.calendar)
    flag = _flag(
        act,
        sr,
        "late_reschedule",
        f"asked {notices.moment(act.now, sr.calendar)} "
        f"for the scan of {was}: less than 2 business days' notice",
    )
    return Done(f"{detail}; less than 2 business days' notice: flagged to the SOC", flag)


def report(act: Act, sr: RequestRow, files: list[int]) -> Done:
    """The scan's report, sent to the customer as this mail's attachment."""
    row = engagement(act, sr)
    if not files:
        raise Refused("attach the report to the mail that carries #report")
    save_scan(act.conn, replace(row, reports=[*row.reports, *files], report_at=act.now))
    return Done(f"report of scan {row.scan} recorded")


def review(act: Act, sr: RequestRow, day: date) -> Done:
    """§3.13.1: the report reviewed with the customer: the remediation windows start."""
    row = engagement(act, sr)
    if row.scan != 1:
        raise Refused("the review of the first scan's report is recorded already")
    if row.scan_start is None:
        raise Refused("the report is reviewed after its scan: schedule the scan first")
    scanned = row.scan_start.astimezone(sr.calendar.zone).date()
    if day < scanned:
        raise Refused(f"the report is reviewed after its scan of {scanned}, not on {day}")
    save_scan(act.conn, replace(row, reviewed_on=day))
    clocks.arm_remediation(act.conn, sr.id, day, sr.calendar, act.now)
    request_by, perform_by = clocks.remediation_dates(day)
    return Done(
        f"report reviewed {day}: remediation scan to be requested by {request_by}, "
        f"performed by {perform_by}"
    )


def remediation(act: Act, sr: RequestRow) -> Done:
    """The customer asks for the remediation scan; after the 30-day window the SOC is told."""
    row = engagement(act, sr)
    if row.reviewed_on is None:
        raise Refused("the report review is not recorded: #reviewed DATE first")
    if row.scan == 2:
        raise Refused("the remediation scan is requested already")
    changed = replace(row, scan=2, scan_start=None, scan_end=None, remediation_requested_at=act.now)
    save_scan(act.conn, changed)
    stop_clocks(act.conn, (clocks.REMEDIATION,), act.now, sr_id=sr.id)
    request_by, perform_by = clocks.remediation_dates(row.reviewed_on)
    if act.now.astimezone(sr.calendar.zone).date() <= request_by:
        return Done(f"remediation scan requested: to be performed by {perform_by}")
    flag = _flag(
        act,
        sr,
        "late_remediation_request",
        f"requested after {request_by}, 30 days after the report review of {row.reviewed_on}",
    )
    return Done(f"remediation scan requested after {request_by}: flagged to the SOC", flag)


def remind(act: Act, sr: RequestRow) -> Deliveries:
    """7 days before the window closes, the customer is reminded, unless they asked already."""
    row = scan_of(act.conn, sr.id)
    if row is None or row.reviewed_on is None or row.scan == 2:
        return ()
    request_by, perform_by = clocks.remediation_dates(row.reviewed_on)
    context = ScanReminder(
        sr_id=sr.public_id,
        title=sr.title,
        contact_name=sr.requester_name or "customer",
        reviewed_on=row.reviewed_on.isoformat(),
        request_by=request_by.isoformat(),
        perform_by=perform_by.isoformat(),
        soc_phone=act.rt.settings.soc_phone,
    )
    return (notices.to_requester(act, sr, "scan_reminder", context),)


def _flag(act: Act, sr: RequestRow, flag: str, detail: str) -> Deliveries:
    context = ScanFlag(
        sr_id=sr.public_id, title=sr.title, customer=sr.customer, flag=flag, detail=detail
    )
    return (notices.to_soc(act, sr, "scan_flag", context),)
