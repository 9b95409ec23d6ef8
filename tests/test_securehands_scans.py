"""Assessment engagements by mail (§3.12, §3.13, R5.6): a Technical Baseline Assessment's report
on its SOW; a Security Assessment Scan's IPs, credits, scans, report review, remediation window,
the reminder before it closes, and what is flagged to the SOC."""

from __future__ import annotations

from datetime import UTC, date, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from gateway.storage.models import ScanEngagement, SecureHandsSow
from tests.support.harness import Gateway, OffsetClock, mail
from tests.support.securehands import ALICE, ANALYST, SOC_QUEUE, at, buy, open_sr, soc
from tests.support.sink import Received, Sink

BERLIN = ZoneInfo("Europe/Berlin")
SCAN = "Vulnerability Assessment of our perimeter"


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN).astimezone(UTC)


def engagement(gateway: Gateway) -> ScanEngagement:
    with gateway.runtime.sessions.begin() as session:
        row = session.scalars(select(ScanEngagement)).one()
        session.expunge_all()
    return row


def flags(sink: Sink) -> list[Received]:
    return [m for m in sink.settle_to(SOC_QUEUE) if "] Scan: " in m.message["Subject"]]


def with_report(gateway: Gateway, sink: Sink, sr_id: str, body: str) -> str:
    """An analyst's answer with the report attached and #report on top; its confirmation."""
    message_id = "<report-1@securecall.example>"
    data = mail(sender=ANALYST, subject=f"[{sr_id}] your report", body=body, message_id=message_id)
    message = message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    message.add_attachment(b"%PDF-1.4 findings", "application", "pdf", filename="report.pdf")
    assert gateway.send(message.as_bytes(policy=policy.SMTP), mail_from=ANALYST).code == 250
    confirmation = sink.wait_until(
        lambda mails: any(m.message["In-Reply-To"] == message_id for m in mails)
    )
    return next(m.text for m in confirmation if m.message["In-Reply-To"] == message_id)


def test_a_scan_engagement_holds_at_most_25_ips_unless_more_are_agreed(
    gateway: Gateway, sink: Sink
) -> None:
    sr_id = open_sr(gateway, sink, SCAN)
    said = soc(gateway, sink, sr_id, "#sow-agreed ips=30")
    assert "REFUSED  #sow-agreed ips=30  -  30 IPs: 1 to 25" in said
    said = soc(gateway, sink, sr_id, "#sow-agreed ips=30 max-ips=30 ordered=2026-11-02")
    assert (
        "done     #sow-agreed ips=30 max-ips=30 ordered=2026-11-02  -  scan engagement: 30 IPs"
        in said
    )
    assert "credits valid until 2027-11-01" in said
    assert "scheduling due" in said  # §3.13.3: 3 working days from the signed SOW
    row = engagement(gateway)
    assert (row.ips, row.max_ips, row.expires_on) == (30, 30, date(2027, 11, 2))


def test_the_remediation_scan_windows_the_reminder_and_a_late_request(
    make_gateway: Any, sink: Sink
) -> None:
    gateway = make_gateway(clock=OffsetClock(berlin(2026, 11, 18, 10)))
    sr_id = open_sr(gateway, sink, SCAN)
    soc(gateway, sink, sr_id, "#sow-agreed ips=12\n#scheduled 2026-11-23T09:00/12:00")
    confirmed = with_report(
        gateway, sink, sr_id, "#report\nHello Alice,\n\nthe report is attached."
    )
    assert "done     #report  -  report of scan 1 recorded" in confirmed
    report = [m for m in sink.settle_to(ALICE) if m.message["Subject"].startswith("Re: ")]
    assert [p.get_filename() for p in report[-1].message.iter_attachments()] == ["report.pdf"]
    said = soc(gateway, sink, sr_id, "#reviewed 2026-11-25")
    assert "remediation scan to be requested by 2026-12-25, performed by 2027-01-09" in said
    at(gateway, berlin(2026, 12, 18, 9, 1))  # 7 days before the 30 days end
    (reminder,) = [m for m in sink.settle_to(ALICE) if "Remediation scan" in m.message["Subject"]]
    assert (
        reminder.message["Subject"] == f"[{sr_id}] Remediation scan: to be requested by 2026-12-25"
    )
    assert "performed\nby 2027-01-09 (45 days after it)" in reminder.text.replace("\r\n", "\n")
    at(gateway, berlin(2026, 12, 28, 10))  # after the window
    said = soc(gateway, sink, sr_id, "#remediation-request")
    assert "remediation scan requested after 2026-12-25: flagged to the SOC" in said
    (flag,) = flags(sink)
    assert "late remediation request" in flag.message["Subject"]
    said = soc(gateway, sink, sr_id, "#scheduled 2027-01-12T09:00/12:00")
    assert "REFUSED" in said
    assert "to be performed by 2027-01-09" in said
    assert "done" in soc(gateway, sink, sr_id, "#scheduled 2027-01-08T09:00/12:00")
    assert engagement(gateway).scan == 2


def test_a_remediation_request_in_time_stops_the_reminder(make_gateway: Any, sink: Sink) -> None:
    gateway = make_gateway(clock=OffsetClock(berlin(2026, 11, 18, 10)))
    sr_id = open_sr(gateway, sink, SCAN)
    soc(gateway, sink, sr_id, "#sow-agreed\n#reviewed 2026-11-18\n#remediation-request")
    at(gateway, berlin(2026, 12, 20, 10))
    assert not [m for m in sink.settle_to(ALICE) if "Remediation" in m.message["Subject"]]
    assert flags(sink) == []


def test_a_reschedule_with_less_than_two_business_days_notice_is_flagged(
    make_gateway: Any, sink: Sink
) -> None:
    gateway = make_gateway(clock=OffsetClock(berlin(2026, 11, 18, 10)))
    sr_id = open_sr(gateway, sink, SCAN)
    soc(gateway, sink, sr_id, "#sow-agreed ips=5\n#scheduled 2026-11-23T09:00/12:00")
    said = soc(gateway, sink, sr_id, "#reschedule 2026-11-24T09:00/12:00")  # 3 days before
    assert "rescheduled" in said
    assert "flagged" not in said
    assert flags(sink) == []
    at(gateway, berlin(2026, 11, 23, 10))  # a working day before the scan of the 24th
    said = soc(gateway, sink, sr_id, "#reschedule 2026-11-30T09:00/12:00")
    assert "less than 2 business days' notice: flagged to the SOC" in said
    (flag,) = flags(sink)
    assert "reschedule with less than 2 business days' notice" in flag.message["Subject"]


def test_a_scan_after_its_credits_expired_is_refused(gateway: Gateway, sink: Sink) -> None:
    sr_id = open_sr(gateway, sink, SCAN)
    soc(gateway, sink, sr_id, "#sow-agreed ordered=2025-12-01")
    said = soc(gateway, sink, sr_id, "#scheduled 2026-12-02T09:00/10:00")
    assert "REFUSED" in said
    assert "the credits are valid until 2026-11-30" in said


def test_a_technical_baseline_assessment_report_is_recorded_on_its_sow(
    make_gateway: Any, sink: Sink
) -> None:
    gateway = make_gateway(clock=OffsetClock(berlin(2026, 11, 18, 10)))
    buy(gateway, "10", date(2026, 11, 2), "PO-9")
    sr_id = open_sr(gateway, sink, "Technical Baseline Assessment of the FortiGate cluster")
    assert "units reserved" in soc(gateway, sink, sr_id, "#sow-agreed units=6 fixed=6")
    assert "REFUSED  #report  -  #report needs an answer" in soc(gateway, sink, sr_id, "#report")
    confirmed = with_report(gateway, sink, sr_id, "#report\nDear Alice,\n\nthe findings attached.")
    assert "done     #report  -  report recorded (1 file)" in confirmed
    with gateway.runtime.sessions.begin() as session:
        files = session.scalars(select(SecureHandsSow.report_files)).one()
    assert len(files) == 1
    assert len(sink.settle_to(ALICE)) == 2  # the acknowledgement and the report
