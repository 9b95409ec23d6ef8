"""`gateway units | sow | sessions | scans` against a running gateway's database: the same
use-cases as the mail commands, every listing with --json, a refusal as one error line."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from cli.app import app
from tests.support.harness import Gateway, OffsetClock
from tests.support.securehands import ALICE, open_sr, soc
from tests.support.sink import Sink

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture
def running(make_gateway: Any) -> Gateway:
    """A gateway on today's clock, whose sweep sends what the command line writes at once."""
    return make_gateway(clock=OffsetClock(datetime.now(UTC)), requeue_after=0.2)


@pytest.fixture
def gateway_cli(running: Gateway, monkeypatch: pytest.MonkeyPatch) -> Any:
    settings = running.settings
    monkeypatch.setenv("GATEWAY_DATABASE_URL", settings.database)
    monkeypatch.setenv("GATEWAY_VAR_DIR", str(settings.var_dir))
    monkeypatch.setenv("GATEWAY_SECRET_KEY", settings.secret_key.get_secret_value())

    def run(*args: str, code: int = 0) -> str:
        result = CliRunner().invoke(app, list(args), catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result.output

    return run


def local(instant: datetime) -> str:
    return instant.astimezone(BERLIN).strftime("%Y-%m-%dT%H:%M")


def test_units_sows_and_sessions_from_the_command_line(
    running: Gateway, sink: Sink, gateway_cli: Any
) -> None:
    sr_id = open_sr(running, sink, "SecureHands: rule base review")
    out = gateway_cli(
        "units",
        "purchase",
        "--customer",
        "Example Corp",
        "--units",
        "10",
        "--date",
        "2026-11-02",
        "--reference",
        "PO-1",
    )
    assert out.startswith("10 units bought for Example Corp (PO-1)")
    gateway_cli("sow", "agree", sr_id, "--units", "4", "--fixed-per-session", "2")
    assert "scheduling due" in gateway_cli("sessions", "request", sr_id)
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=3)
    gateway_cli(
        "sessions",
        "schedule",
        sr_id,
        "--start",
        local(start),
        "--end",
        local(start + timedelta(hours=1)),
    )
    out = gateway_cli(
        "sessions",
        "record",
        sr_id,
        "--start",
        local(start),
        "--end",
        local(start + timedelta(minutes=50)),
    )
    assert re.match(r"session 1 delivered: 2 units pending; statement sent, accepted ", out), out
    statement = sink.wait_until(
        lambda mails: any("completion statement" in m.message["Subject"] for m in mails), 30
    )
    assert any(ALICE in m.rcpt_tos for m in statement if "statement" in m.message["Subject"])
    shown = json.loads(gateway_cli("units", "balance", "--customer", "Example Corp", "--json"))
    assert (shown["reserved"], shown["pending"], shown["available"]) == (2, 2, 6)
    assert [(lot["reference"], lot["left"]) for lot in shown["lots"]] == [("PO-1", 8)]
    assert "available  6" in gateway_cli("units", "balance", "--customer", "Example Corp")
    lines = json.loads(gateway_cli("units", "ledger", "--customer", "Example Corp", "--json"))
    assert [(line["kind"], line["units"], line["from_reserve"]) for line in lines] == [
        ("purchase", 10, 0),
        ("reserve", 4, 0),
        ("pending", 2, 2),
    ]
    listed = json.loads(gateway_cli("sessions", "list", "--customer", "Example Corp", "--json"))
    assert [(s["id"], s["sr_id"], s["state"], s["units"]) for s in listed] == [
        (1, sr_id, "delivered", 2)
    ]
    assert listed[0]["counting"]["fixed"] == "2"


def test_the_command_line_refuses_with_the_reason_and_changes_nothing(
    running: Gateway, sink: Sink, gateway_cli: Any
) -> None:
    sr_id = open_sr(running, sink, "SecureHands: rule base review")
    assert "error: no Service Request SR-0000-0000" in gateway_cli(
        "sow", "agree", "SR-0000-0000", "--units", "4", code=2
    )
    assert "error: units: a number above 0" in gateway_cli(
        "sow", "agree", sr_id, "--units", "-1", code=2
    )
    assert "error: no session 99" in gateway_cli("sessions", "cancel", "99", code=2)
    gateway_cli("sow", "agree", sr_id, "--units", "3")
    gateway_cli("sessions", "request", sr_id)
    assert "is requested, not queried" in gateway_cli(
        "sessions", "credit", "1", "--units", "1", "--reason", "x", code=2
    )
    later = datetime.now(UTC) + timedelta(days=10)
    gateway_cli(
        "sessions",
        "schedule",
        sr_id,
        "--start",
        local(later),
        "--end",
        local(later + timedelta(hours=2)),
    )
    out = gateway_cli("sessions", "cancel", "1", "--beyond-control")
    assert "session 1 to be rearranged (beyond control): nothing forfeited" in out
    lines = json.loads(gateway_cli("units", "ledger", "--customer", "Example Corp", "--json"))
    assert [line["kind"] for line in lines] == ["reserve"]
    assert "error: no customer named 'Nobody'" in gateway_cli(
        "units", "balance", "--customer", "Nobody", code=2
    )


def test_numbers_beyond_any_purchase_are_refused_in_one_line_on_the_command_line_and_by_mail(
    running: Gateway, sink: Sink, gateway_cli: Any
) -> None:
    sr_id = open_sr(running, sink, "SecureHands: rule base review")
    for units in ("1e30", "99999999999999999999.99", "1000000.01"):
        out = gateway_cli(
            "units", "purchase", "--customer", "Example Corp", "--units", units, code=2
        )
        assert out.startswith("error: units: a number above 0 and at most 1,000,000"), out
        assert "Traceback" not in out
    assert "Invalid value" in gateway_cli("sessions", "cancel", "99999999999999999999", code=2)
    assert json.loads(gateway_cli("units", "ledger", "--customer", "Example Corp", "--json")) == []
    # By mail: each refused with its reason, the mail's other commands carried out
    commands = "#purchase 1e30\n#sow-agreed units=1e26\n#cancel 99999999999999999999\n#balance"
    confirmation = soc(running, sink, sr_id, commands)
    assert "REFUSED  #purchase 1e30  -  units: a number above 0 and at most 1,000,000" in (
        confirmation
    )
    assert "REFUSED  #sow-agreed units=1e26  -  units: a number above 0" in confirmation
    assert "REFUSED  #cancel 99999999999999999999  -  session: a whole number up to" in (
        confirmation
    )
    assert "done     #balance" in confirmation
    assert json.loads(gateway_cli("quarantine", "list", "--json")) == []


def test_scans_from_the_command_line(running: Gateway, sink: Sink, gateway_cli: Any) -> None:
    sr_id = open_sr(running, sink, "Vulnerability Assessment of the perimeter")
    out = gateway_cli("scans", "order", sr_id, "--ips", "12", "--date", "2026-11-02")
    assert out.startswith("scan engagement: 12 IPs, credits valid until 2027-11-01")
    scanned = datetime.now(UTC) - timedelta(days=2)  # the scan took place, then its review
    gateway_cli(
        "scans",
        "schedule",
        sr_id,
        "--start",
        local(scanned),
        "--end",
        local(scanned + timedelta(hours=3)),
    )
    before = (scanned - timedelta(days=1)).astimezone(BERLIN).date().isoformat()
    assert "error: the report is reviewed after its scan of" in gateway_cli(
        "scans", "review", sr_id, "--date", before, code=2
    )
    gateway_cli("scans", "review", sr_id)
    assert "remediation scan requested" in gateway_cli("scans", "remediation", sr_id)
    listed = json.loads(gateway_cli("scans", "list", "--json"))
    assert [(s["sr_id"], s["ips"], s["scan"]) for s in listed] == [(sr_id, 12, 2)]
    tomorrow = (datetime.now(BERLIN) + timedelta(days=1)).date().isoformat()
    assert "error: an order is dated today" in gateway_cli(
        "scans",
        "order",
        open_sr(running, sink, "Vulnerability Assessment 3"),
        "--date",
        tomorrow,
        code=2,
    )
    assert "error: a purchase is dated today" in gateway_cli(
        "units",
        "purchase",
        "--customer",
        "Example Corp",
        "--units",
        "5",
        "--date",
        tomorrow,
        code=2,
    )
    assert "error: 30 IPs: 1 to 25" in gateway_cli(
        "scans",
        "order",
        open_sr(running, sink, "Vulnerability Assessment 2"),
        "--ips",
        "30",
        code=2,
    )
