"""The README's worked example of the unit ledger, run as it is written: each row's command goes
through the command line or the listener (as SOC staff mail, or Alice's answer), the clock is
moved to the row's time, and the balance after it must be the row's figures. The statement and
the decision reach the SMTP sink with the figures in their text."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from cli.app import app
from tests.support.harness import Gateway, OffsetClock, mail
from tests.support.securehands import (
    ALICE,
    ANALYST,
    LEAD,
    MANAGEMENT,
    at,
    balance,
    lots_left,
    open_sr,
    soc,
)
from tests.support.sink import Received, Sink

README = Path(__file__).parent.parent / "README.md"
BERLIN = ZoneInfo("Europe/Berlin")
START = datetime(2026, 11, 18, 9, 0, tzinfo=UTC)  # Wednesday 10:00 in Berlin
WHO = {"analyst": ANALYST, "team leader": LEAD}
MINUTE, ZERO = timedelta(minutes=1), timedelta(0)


def example() -> list[dict[str, str]]:
    """The rows of the README's worked example, by column."""
    text = README.read_text(encoding="utf-8")
    block = text.split("<!-- worked example: begin -->")[1].split("<!-- worked example: end -->")[0]
    lines = [line for line in block.strip().splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    return [
        dict(zip(header, (cell.strip() for cell in line.strip("|").split("|")), strict=True))
        for line in lines[2:]
    ]


def when(cell: str) -> datetime:
    """'Fri 27 Nov 15:00' (2026 unless given) in Berlin."""
    found = re.fullmatch(r"\w{3} (\d+) (\w{3})(?: (\d{4}))? (\d\d:\d\d)", cell)
    assert found, cell
    day, month, year, clock = found.groups()
    local = datetime.strptime(f"{day} {month} {year or 2026} {clock}", "%d %b %Y %H:%M")
    return local.replace(tzinfo=BERLIN).astimezone(UTC)


def commands(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


@pytest.fixture
def cli(gateway_env: Gateway, monkeypatch: pytest.MonkeyPatch) -> Any:
    settings = gateway_env.settings
    monkeypatch.setenv("GATEWAY_DATABASE_URL", settings.database)
    monkeypatch.setenv("GATEWAY_VAR_DIR", str(settings.var_dir))
    monkeypatch.setenv("GATEWAY_SECRET_KEY", settings.secret_key.get_secret_value())

    def run(command: str) -> str:
        args = re.findall(r'"[^"]*"|\S+', command)[1:]  # without "gateway"
        result = CliRunner().invoke(app, [a.strip('"') for a in args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    return run


@pytest.fixture(params=["sqlite_url", "postgres_url"])
def gateway_env(make_gateway: Any, request: pytest.FixtureRequest) -> Gateway:
    database = request.getfixturevalue(request.param)
    return make_gateway(clock=OffsetClock(START), database_url=database)


def test_the_readme_worked_example_holds_step_by_step(
    gateway_env: Gateway, sink: Sink, cli: Any
) -> None:
    gateway = gateway_env
    sr_id = open_sr(gateway, sink, "SecureHands: firewall cluster upgrade")
    said: dict[int, str] = {}
    for row in example():
        step = int(row["step"])
        # the clock's rows: just past their minute (a statement written at 12:00 and some
        # seconds is accepted 2 working days later at 12:00 and as many seconds)
        moment = when(row["when (Berlin)"]) + (MINUTE if row["who"] == "clock" else ZERO)
        at(gateway, max(moment, gateway.runtime.now()))
        said[step] = _carry_out(gateway, sink, cli, sr_id, row)
        figures = balance(gateway)
        shown = lots_left(figures)
        expected = {"PO-4100": row["PO-4100"], "PO-4711": row["PO-4711"]}
        assert {k: shown.get(k, "–") for k in expected} == expected, f"step {step}"
        assert [f"{v.normalize():f}" for v in (figures.reserved, figures.pending)] == [
            row["reserved"],
            row["pending"],
        ], f"step {step}"
        assert f"{figures.available.normalize():f}" == row["available"], f"step {step}"
    assert "scheduling due 2026-11-23 09:00 UTC" in said[4]  # Monday 10:00 in Berlin
    statements = _to_alice(sink, "completion statement")
    assert len(statements) == 2
    _the_first_statement_states_the_example(statements[0])
    (alert,) = [m for m in sink.to(MANAGEMENT) if "QUERY" in m.message["Subject"]]
    assert "we had agreed to stop at 17:00" in alert.text
    assert "Decide by:   Monday 7 December 2026, 10:00 CET" in alert.text
    (decided,) = _to_alice(sink, "Your query")
    assert decided.message["Subject"] == (
        f"[{sr_id}] Your query of SecureHands session 1: 3 units credited"
    )
    assert "cancelled 3 of its 5 units. The session\r\nnow counts 2 units." in decided.text
    assert "Available: 20" in decided.text
    assert "accepted on Monday 7 December 2026, 12:00 CET" in statements[1].text
    # Step 12: the acceptance itself writes nobody
    assert not [m for m in sink.settle_to(ALICE) if "accepted" in m.message["Subject"].lower()]


def _carry_out(gateway: Gateway, sink: Sink, cli: Any, sr_id: str, row: dict[str, str]) -> str:
    given = commands(row["what"])
    if row["who"] == "admin":
        return "\n".join(cli(command) for command in given)
    if row["who"] in WHO:
        return soc(gateway, sink, sr_id, "\n".join(given), sender=WHO[row["who"]])
    if row["who"] == "Alice":
        (words,) = re.findall(r'"([^"]+)"', row["what"])
        _answer_statement(gateway, sink, words)
    return ""


def _to_alice(sink: Sink, subject: str) -> list[Received]:
    return [m for m in sink.settle_to(ALICE) if subject in m.message["Subject"]]


def _answer_statement(gateway: Gateway, sink: Sink, words: str) -> None:
    """Alice answers the statement from her client: her text above the quoted statement."""
    (statement,) = _to_alice(sink, "completion statement")
    quoted = "\n".join(f"> {line}" for line in statement.text.splitlines())
    data = mail(
        subject=f"Re: {statement.message['Subject']}",
        body=f"{words}\n\nAlice\n\nOn Fri, SecureCall SOC wrote:\n{quoted}\n",
        in_reply_to=statement.message["Message-ID"],
        references=statement.message["Message-ID"],
    )
    assert gateway.send(data).code == 250
    sink.wait_until(lambda mails: any("QUERY" in m.message["Subject"] for m in mails))


def _the_first_statement_states_the_example(statement: Received) -> None:
    text = statement.text.replace("\r\n", "\n")
    for line in (
        "Date:        Thursday 26 November 2026",
        "Time:        15:00-18:20 CET (3 h 20 min)",
        "Units:       5",
        "4 hours charged",
        "2 inside Business Hours – Standard at 1 unit per hour,",
        "2 outside them at 1.5 units per hour.",
        "PO-4100: 0 units left (bought 2026-01-15, valid until 2027-01-14)",
        "PO-4711: 20 units left (bought 2026-11-02, valid until 2027-11-01)",
        "Reserved for agreed Statements of Work: 3",
        "Pending acceptance: 5",
        "Available: 17",
        "accepted on Tuesday 1 December 2026, 15:00 CET",
        "answer this mail with\n  the word QUERY in its first line",
    ):
        assert line in text, line
    html = statement.html
    assert "<strong>5</strong>" in html
    assert "PO-4711" in html
    assert statement.message["Auto-Submitted"] == "auto-generated"
    assert statement.message["In-Reply-To"]  # threaded on the SR, in Alice's thread
