"""The clock (R3.3, §3.5.4): warnings and breaches at the right instants, not-updated alerts.

Time is moved by the injectable clock and `clock.tick` is called: nothing sleeps.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway import clock
from tests.support.harness import Gateway, OffsetClock, eventually, mail, sr_id_of
from tests.support.sink import Received, Sink

ALICE = "alice@example.com"
ANALYST = "analyst@securecall.example"
SOC_QUEUE = "soc-queue@securecall.example"
WEDNESDAY_10_BERLIN = datetime(2026, 11, 18, 9, 0, tzinfo=UTC)
FRIDAY_16_BERLIN = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


def alerts(sink: Sink, word: str) -> list[Received]:
    """SOC-queue mails whose subject has `word` (WARNING, BREACHED, Not updated …), once the
    gateway has sent what it had to send."""
    sink.settle()
    return [m for m in sink.to(SOC_QUEUE) if word in m.message["Subject"]]


def at(gateway: Gateway, when: datetime) -> None:
    """Move the gateway's clock to `when` and let the clock act."""
    clock_of(gateway).advance(when - gateway.runtime.now())
    clock.tick(gateway.runtime)


def clock_of(gateway: Gateway) -> OffsetClock:
    assert isinstance(gateway.clock, OffsetClock)
    return gateway.clock


def open_sr(gateway: Gateway, sink: Sink, subject: str = "VPN tunnel down") -> str:
    """Alice opens an SR; returns its ID, read from the SOC's notification of it."""

    def notifications() -> list[Any]:
        # matched by title too: the SOC's copy of an earlier SR may still be on its way
        return [
            m
            for m in sink.to(SOC_QUEUE)
            if "New P" in m.message["Subject"] and m.message["Subject"].endswith(f": {subject}")
        ]

    opened = notifications()
    assert gateway.send(mail(subject=subject)).code == 250
    notification = eventually(lambda: notifications()[len(opened) :])[0]
    return sr_id_of(notification)


def soc_command(gateway: Gateway, sr_id: str, command: str) -> None:
    data = mail(sender=ANALYST, subject=f"[{sr_id}] command", body=command)
    assert gateway.send(data, mail_from=ANALYST).code == 250


@pytest.mark.parametrize(
    ("priority", "target"),
    [
        (1, timedelta(minutes=30)),
        (2, timedelta(hours=2)),
        (3, timedelta(hours=24)),
        (4, timedelta(days=2)),
    ],
)
def test_an_unanswered_sr_is_warned_about_at_80_percent_and_reported_when_missed(
    make_gateway: Any, sink: Sink, priority: int, target: timedelta
) -> None:
    gateway = make_gateway(clock=OffsetClock(WEDNESDAY_10_BERLIN))
    start = gateway.runtime.now()
    sr_id = open_sr(gateway, sink)
    if priority != 3:
        soc_command(gateway, sr_id, f"#priority {priority}")
    warning_at = start + target * 0.8
    minute = timedelta(minutes=1)
    at(gateway, warning_at - minute)
    assert alerts(sink, "WARNING") == []
    at(gateway, warning_at + minute)
    (warning,) = alerts(sink, "WARNING")
    assert warning.message["Subject"].startswith(f"[{sr_id}] WARNING: Initial Response target")
    assert warning.message["Auto-Submitted"] == "auto-generated"
    at(gateway, start + target - minute)
    assert alerts(sink, "BREACHED") == []
    at(gateway, start + target + minute)
    (breach,) = alerts(sink, "BREACHED")
    assert breach.message["Subject"] == (
        f"[{sr_id}] BREACHED: Initial Response target missed (P{priority}, Example Corp)"
    )
    at(gateway, start + target * 3)
    assert len(alerts(sink, "WARNING")) == 1  # each is sent once
    assert len(alerts(sink, "BREACHED")) == 1


def test_a_priority_change_moves_the_warning_and_the_breach(make_gateway: Any, sink: Sink) -> None:
    gateway = make_gateway(clock=OffsetClock(WEDNESDAY_10_BERLIN))
    start = gateway.runtime.now()
    sr_id = open_sr(gateway, sink)  # P3: due in 24 hours
    at(gateway, start + timedelta(minutes=20))
    soc_command(gateway, sr_id, "#priority 1")  # now due 30 minutes after opening
    at(gateway, start + timedelta(minutes=25))
    assert len(alerts(sink, "WARNING")) == 1
    at(gateway, start + timedelta(minutes=31))
    assert len(alerts(sink, "BREACHED")) == 1


def test_an_answer_before_the_target_stops_its_clock(make_gateway: Any, sink: Sink) -> None:
    gateway = make_gateway(clock=OffsetClock(WEDNESDAY_10_BERLIN))
    start = gateway.runtime.now()
    sr_id = open_sr(gateway, sink)
    at(gateway, start + timedelta(hours=1))
    soc_command(gateway, sr_id, "We are looking at the tunnel logs now.")
    at(gateway, start + timedelta(hours=30))
    assert alerts(sink, "WARNING") == []
    assert alerts(sink, "BREACHED") == []


def test_securehands_targets_run_on_working_hours_over_the_weekend(
    make_gateway: Any, sink: Sink
) -> None:
    gateway = make_gateway(clock=OffsetClock(FRIDAY_16_BERLIN))
    sr_id = open_sr(gateway, sink, subject="SecureHands: firmware upgrade of the cluster")
    # 8 working hours from Friday 16:00: 1 hour on Friday, 7 on Monday -> Monday 16:00 Berlin
    monday_16 = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
    at(gateway, datetime(2026, 11, 22, 20, 0, tzinfo=UTC))  # Sunday evening: nothing yet
    assert alerts(sink, "Initial Response") == []
    at(gateway, monday_16 - timedelta(minutes=1))
    assert len(alerts(sink, "WARNING: Initial Response")) == 1  # 80%: Monday 14:24
    at(gateway, monday_16 + timedelta(minutes=1))
    assert len(alerts(sink, "BREACHED: Initial Response")) == 1
    # The SOW response target: 2 working days from Friday 16:00 -> Tuesday 16:00
    at(gateway, datetime(2026, 11, 24, 15, 1, tzinfo=UTC))
    assert len(alerts(sink, "BREACHED: Statement of Work response")) == 1
    assert sr_id in alerts(sink, "Statement of Work")[0].message["Subject"]


def test_the_scheduling_target_starts_when_the_soc_records_the_agreed_sow(
    make_gateway: Any, sink: Sink
) -> None:
    gateway = make_gateway(clock=OffsetClock(WEDNESDAY_10_BERLIN))
    sr_id = open_sr(gateway, sink, subject="Vulnerability Assessment of our perimeter")
    soc_command(gateway, sr_id, "#sow-sent")  # refused: a scan has no SOW-response target
    soc_command(gateway, sr_id, "#sow-agreed")
    # two confirmations, sent by two worker threads: either may arrive first
    confirmations = [m.text for m in sink.wait_to(ANALYST, 2)]
    assert any("REFUSED  #sow-sent" in text for text in confirmations), confirmations
    assert any("done     #sow-agreed" in text for text in confirmations), confirmations
    # 3 working days from Wednesday 10:00 -> Monday 10:00 Berlin
    at(gateway, datetime(2026, 11, 23, 8, 59, tzinfo=UTC))
    assert alerts(sink, "BREACHED: Scheduling") == []
    at(gateway, datetime(2026, 11, 23, 9, 1, tzinfo=UTC))
    assert len(alerts(sink, "BREACHED: Scheduling")) == 1
    soc_command(gateway, sr_id, "#scheduled")
    assert "done     #scheduled" in sink.wait_to(ANALYST, 3)[2].text


def test_an_open_sr_without_soc_update_raises_an_alert_each_interval(
    make_gateway: Any, sink: Sink
) -> None:
    gateway = make_gateway(clock=OffsetClock(WEDNESDAY_10_BERLIN), update_hours_p3=6.0)
    start = gateway.runtime.now()
    sr_id = open_sr(gateway, sink)
    at(gateway, start + timedelta(hours=5, minutes=59))
    assert alerts(sink, "Not updated") == []
    at(gateway, start + timedelta(hours=6, minutes=1))
    (alert,) = alerts(sink, "Not updated")
    assert alert.message["Subject"].startswith(f"[{sr_id}] Not updated for 6h")
    soc_command(gateway, sr_id, "#note\nWaiting for the vendor.")  # an update from the SOC
    at(gateway, start + timedelta(hours=12))
    assert len(alerts(sink, "Not updated")) == 1
    at(gateway, start + timedelta(hours=12, minutes=2))
    assert len(alerts(sink, "Not updated")) == 2  # six hours after the note
    soc_command(gateway, sr_id, "#state waiting")  # waiting for the customer: no alerts
    at(gateway, start + timedelta(days=3))
    assert len(alerts(sink, "Not updated")) == 2
