"""The units report (§3.11.2) of a scripted ledger equals figures worked out by hand: units bought,
reserved, consumed, credited, forfeited and expired through the product's own paths (the
SecureHands use-cases, the SOC's commands by mail, Alice's query on the statement's thread, the
clock), at chosen instants, across the end of summer time and month boundaries; its CSV says
what its JSON says; the lots that expire within 90 days end exactly at day 90; the command line
prints it; the account review carries it.

Example Corp's office is Berlin: UTC+2 until 01:00 UTC on Sunday 25 October 2026, UTC+1 after.
The SOC (Europe/London) is UTC+1, then UTC. The report's months are the office's:

- 30 Sep 22:30 UTC is 1 October 00:30 in Berlin (23:30 in London): the SOW's reservation is
  October's.
- Lot PO-A (bought 2025-11-01) expires at 00:00 CET on 1 November, 23:00 UTC on 31 October:
  November's (London would still say October).
- The no-show recorded at 30 Nov 23:30 UTC is 1 December 00:30 in Berlin: December's.

The lots are used first to expire first (securehands/balance.py). Opening (before 1 October
00:00 CEST): PO-A 10, PO-D90 6, PO-E91 4 bought (dated 2025-11-01, 2026-04-04, 2026-04-05),
available 20.

October
  reserve 10 (SOW agreed, 1 Oct 00:30)                                      available 10
  pending 5 (session of Thu 22 Oct 15:00-18:20 CEST: 4 hours, 2 outside at 1.5: 2 + 3),
      from PO-A, all 5 from the reservation                                 available 10
  Alice queries the statement; the team leader credits 2 on 28 Oct: debit 5, credit 2 to
      PO-A                                                                  available 12
  purchase 20: PO-B recorded on 2 Nov, dated 30 Oct: October's              available 32
  reserved at the end 5
November
  expire 7: PO-A (10 - 5 + 2) at 00:00 CET 1 Nov                            available 25
  forfeit 2: session of Thu 5 Nov 09:00-11:00 cancelled Wed 4 Nov 13:00 CET (4 working hours
      before it), from PO-D90, from the reservation                         available 25
  reserved at the end 3
December
  forfeit 1.5: no-show of Mon 30 Nov 21:00-22:00 CET (1 hour outside at 1.5), from PO-D90,
      from the reservation                                                  available 25
  release 1.5: the SOW finished (10 - 5 - 2 - 1.5)                          available 26.5
  reserve 3: a second SOW                                                   available 23.5
  reserved at the end 3

Lots left at the review (4 January 2027): PO-D90 2.5, PO-E91 4, PO-B 20. The 3 units reserved
are counted against the first to expire: PO-D90 is all covered, 0.5 of PO-E91. On 4 January in
Berlin PO-D90 (expires 4 April) is 90 days away and listed, PO-E91 (5 April) 91 days away and not;
from 00:00 CET on 5 January (23:00 UTC on the 4th) both are listed.
"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from cli.app import app
from gateway import clock
from gateway.core.runtime import Runtime
from gateway.reports import charts, periods, queries
from gateway.reports.units import UnitsReport, units_report
from gateway.storage.db import transaction
from gateway.storage.models import UnitEntry
from tests.support.harness import Gateway, mail
from tests.support.quarter import StoppedClock
from tests.support.securehands import (
    ALICE,
    ANALYST,
    DANA,
    LEAD,
    MANAGEMENT,
    balance,
    buy,
    open_sr,
    soc,
)
from tests.support.sink import Received, Sink

START = datetime(2026, 9, 28, 8, 0, tzinfo=UTC)  # Monday 10:00 CEST
REVIEW = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)  # the Q4 account review (09:00 London)
Q4 = "2026Q4"


def utc(month: int, day: int, hour: int, minute: int = 0, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def month(name: str | None, **moved: float) -> dict[str, Any]:
    figures = dict.fromkeys(
        ("purchased", "reserved", "released", "consumed", "accepted", "forfeited", "expired"), 0
    )
    return {"month": name, **figures, "credited": 0, **moved}


MONTHS = [
    month("2026-10", purchased=20, reserved=10, consumed=5, accepted=5, credited=2,
          available_at_start=20, reserved_at_end=5, available_at_end=32),
    month("2026-11", forfeited=2, expired=7,
          available_at_start=32, reserved_at_end=3, available_at_end=25),
    month("2026-12", reserved=3, released=1.5, forfeited=1.5,
          available_at_start=25, reserved_at_end=3, available_at_end=23.5),
]  # fmt: skip
TOTAL = month(None, purchased=20, reserved=13, released=1.5, consumed=5, accepted=5,
              forfeited=3.5, expired=7, credited=2, available_at_start=20,
              reserved_at_end=3, available_at_end=23.5)  # fmt: skip
D90 = {"reference": "PO-D90", "purchased_on": "2026-04-04", "expires_on": "2027-04-04",
       "last_valid_day": "2027-04-03", "units": 6, "left": 2.5, "uncovered": 0}  # fmt: skip
E91 = {"reference": "PO-E91", "purchased_on": "2026-04-05", "expires_on": "2027-04-05",
       "last_valid_day": "2027-04-04", "units": 4, "left": 4, "uncovered": 3.5}  # fmt: skip
# Other GmbH (Berlin too) buys 5 units on 1 December and does nothing else.
OTHER = {
    "customer": "Other GmbH",
    "timezone": "Europe/Berlin",
    "months": [
        month("2026-10", available_at_start=0, reserved_at_end=0, available_at_end=0),
        month("2026-11", available_at_start=0, reserved_at_end=0, available_at_end=0),
        month("2026-12", purchased=5, available_at_start=0, reserved_at_end=0, available_at_end=5),
    ],
    "total": month(None, purchased=5, available_at_start=0, reserved_at_end=0,
                   available_at_end=5),
    "expiring": [],
}  # fmt: skip


class Script:
    """The clock stands still between moves, so every line is written at the instant chosen."""

    def __init__(self, gateway: Gateway, sink: Sink) -> None:
        self.gateway, self.sink = gateway, sink

    def move(self, when: datetime, *, tick: bool = True) -> None:
        self.sink.settle()  # the mail of the moment is out before time jumps (support/quarter)
        stopped = self.gateway.clock
        assert isinstance(stopped, StoppedClock)
        assert when >= stopped.instant, f"the script goes back in time to {when}"
        stopped.instant = when
        while tick and clock.tick(self.gateway.runtime):
            pass

    def soc(self, sr_id: str, when: datetime, commands: str, sender: str = "") -> str:
        self.move(when)
        said = soc(self.gateway, self.sink, sr_id, commands, sender=sender or ANALYST)
        assert "refused" not in said.lower(), said
        return said

    def query(self, when: datetime, words: str) -> None:
        """Alice answers the completion statement from her mail client."""
        self.move(when)
        (statement,) = [m for m in self.sink.to(ALICE) if "completion statement" in subject(m)]
        quoted = "\n".join(f"> {line}" for line in statement.text.splitlines())
        data = mail(
            subject=f"Re: {subject(statement)}",
            body=f"{words}\n\nAlice\n\nOn Fri, SecureCall SOC wrote:\n{quoted}\n",
            in_reply_to=statement.message["Message-ID"],
            references=statement.message["Message-ID"],
        )
        assert self.gateway.send(data).code == 250
        self.sink.wait_until(lambda mails: any(MANAGEMENT in m.rcpt_tos for m in mails))


def subject(received: Received) -> str:
    return str(received.message["Subject"])


def play(gateway: Gateway, sink: Sink) -> None:
    s = Script(gateway, sink)
    buy(gateway, "10", date(2025, 11, 1), "PO-A")
    buy(gateway, "6", date(2026, 4, 4), "PO-D90")
    buy(gateway, "4", date(2026, 4, 5), "PO-E91")
    s.move(utc(9, 30, 22, 20))
    sr = open_sr(gateway, sink, "SecureHands: firewall cluster upgrade")
    s.soc(sr, utc(9, 30, 22, 30), "#sow-agreed units=10 rate=1.5")
    s.soc(sr, utc(10, 5, 9), "#session-request\n#scheduled 2026-10-22T15:00/18:00")
    s.soc(sr, utc(10, 23, 8), "#delivered 2026-10-22T15:00/18:20")
    s.query(utc(10, 26, 9), "QUERY: we had agreed to stop at 17:00")
    s.soc(sr, utc(10, 28, 10), "#credit 2 the overrun was ours", sender=LEAD)
    # PO-A's validity ends at 23:00 UTC on 31 October; the clock is not looked at until the
    # morning, so the report first counts the lot as lapsed, then its expire line
    s.move(utc(11, 1, 6), tick=False)
    lapsed = report_of(gateway, gateway.runtime.now(), "Example Corp").customers[0]
    s.move(utc(11, 1, 6))
    written = report_of(gateway, gateway.runtime.now(), "Example Corp").customers[0]
    assert lapsed.months == written.months
    assert [m.expired for m in written.months][:2] == [0, 7]
    # PO-B is not recorded yet: PO-D90 6 and PO-E91 4, less the 5 reserved, as the balance says
    assert written.total.available_at_end == balance(gateway).available == 5
    s.move(utc(11, 2, 9))
    buy(gateway, "20", date(2026, 10, 30), "PO-B")
    s.soc(sr, utc(11, 2, 10), "#session-request\n#scheduled 2026-11-05T09:00/11:00")
    assert "forfeited" in s.soc(sr, utc(11, 4, 12), "#cancel")
    s.soc(sr, utc(11, 23, 10), "#session-request\n#scheduled 2026-11-30T21:00/22:00")
    assert "forfeited" in s.soc(sr, utc(11, 30, 23, 30), "#no-show")
    s.move(utc(12, 1, 10))
    buy(gateway, "5", date(2026, 12, 1), "PO-O1", customer="Other GmbH")
    s.soc(sr, utc(12, 1, 10), "#sow-finished")
    s.soc(sr, utc(12, 10, 10), "#sow-agreed units=3")
    s.move(REVIEW)  # the account review of 2026 Q4 goes out


def prepare(rt: Runtime) -> None:
    clock.prepare(rt)  # the quarterly account review, among the daily jobs


def report_of(gateway: Gateway, as_of: datetime, customer: str | None = None) -> UnitsReport:
    rt = gateway.runtime
    period = periods.quarter(Q4, rt.settings.soc_timezone)
    with transaction(rt.sessions, readonly=True) as conn:
        ref = queries.customer_named(conn, customer) if customer else None
        return units_report(conn, period, as_of, customer, ref.id if ref else None)


@pytest.mark.parametrize("database", ["sqlite_url", "postgres_url"])
def test_a_scripted_ledger_reports_the_hand_worked_units_per_month_and_the_lots_soon_to_expire(
    database: str,
    request: pytest.FixtureRequest,
    make_gateway: Any,
    sink: Sink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gateway = make_gateway(
        database_url=request.getfixturevalue(database), clock=StoppedClock(START), prepare=prepare
    )
    play(gateway, sink)
    the_ledger_holds_the_lines_at_the_chosen_instants(gateway)
    found = report_of(gateway, REVIEW, "Example Corp").as_json()
    assert (found["from"], found["to"], found["as_of"], found["expiring_within_days"]) == (
        "2026-10-01",
        "2026-12-31",
        "2027-01-04T09:00:00+00:00",
        90,
    )
    (example,) = found["customers"]
    assert (example["customer"], example["timezone"]) == ("Example Corp", "Europe/Berlin")
    assert example["months"] == MONTHS
    assert example["total"] == TOTAL
    assert example["expiring"] == [{**D90, "days_left": 90}]
    assert balance(gateway).available == 23.5  # the balance the customer is shown agrees
    the_ninety_days_end_at_midnight_in_the_office(gateway)
    everyone = report_of(gateway, REVIEW).as_json()
    assert everyone["customer"] is None
    assert everyone["customers"] == [example, OTHER]
    the_command_prints_it_and_its_csv_says_what_its_json_says(gateway, monkeypatch, found)
    the_chart_draws_each_movement_of_each_month(report_of(gateway, REVIEW, "Example Corp"))
    the_account_review_has_the_units(sink)


def the_ledger_holds_the_lines_at_the_chosen_instants(gateway: Gateway) -> None:
    with gateway.runtime.sessions.begin() as session:
        lines = session.execute(select(UnitEntry.kind, UnitEntry.units, UnitEntry.at)).all()
    moved = {(kind, f"{units.normalize():f}", at) for kind, units, at in lines}
    assert {
        ("reserve", "10", utc(9, 30, 22, 30)),
        ("pending", "5", utc(10, 23, 8)),
        ("credit", "2", utc(10, 28, 10)),
        ("expire", "7", utc(11, 1, 6)),
        ("forfeit", "2", utc(11, 4, 12)),
        ("forfeit", "1.5", utc(11, 30, 23, 30)),
        ("release", "1.5", utc(12, 1, 10)),
    } <= moved


def the_ninety_days_end_at_midnight_in_the_office(gateway: Gateway) -> None:
    """23:59 CET on 4 January: PO-E91 is 91 days away; at 00:00 CET on the 5th, 90."""
    late = report_of(gateway, utc(1, 4, 22, 59, year=2027), "Example Corp").as_json()
    assert late["customers"][0]["expiring"] == [{**D90, "days_left": 90}]
    midnight = report_of(gateway, utc(1, 4, 23, 0, year=2027), "Example Corp").as_json()
    assert midnight["customers"][0]["expiring"] == [
        {**D90, "days_left": 89},
        {**E91, "days_left": 90},
    ]
    assert midnight["customers"][0]["months"] == MONTHS  # the quarter's figures do not move


def cli(gateway: Gateway, monkeypatch: pytest.MonkeyPatch, *args: str) -> str:
    """`gateway …` in this process, on the gateway's own database."""
    settings = gateway.settings
    monkeypatch.setenv("GATEWAY_DATABASE_URL", settings.database)
    monkeypatch.setenv("GATEWAY_VAR_DIR", str(settings.var_dir))
    monkeypatch.setenv("GATEWAY_SECRET_KEY", "test-signing-key")
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def same(cell: str, value: Any) -> bool:
    if value is None:
        return cell == ""
    if isinstance(value, int | float):
        return float(cell) == value
    return cell == str(value)


def the_command_prints_it_and_its_csv_says_what_its_json_says(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch, found: dict[str, Any]
) -> None:
    options = ("reports", "units", "--customer", "Example Corp")
    options += ("--from", "2026-10-01", "--to", "2026-12-31", "--as-of", REVIEW.isoformat())
    printed = json.loads(cli(gateway, monkeypatch, *options, "--json"))
    assert printed == found
    rows = list(csv.DictReader(io.StringIO(cli(gateway, monkeypatch, *options, "--csv"))))
    (example,) = found["customers"]
    expected = [
        *(("month", m) for m in example["months"]),
        ("total", example["total"]),
        *(("lot", lot) for lot in example["expiring"]),
    ]
    assert [r["scope"] for r in rows] == [scope for scope, _ in expected]
    for row, (_scope, figures) in zip(rows, expected, strict=True):
        assert (row["customer"], row["timezone"]) == ("Example Corp", "Europe/Berlin")
        assert all(same(row[k], v) for k, v in figures.items()), (row, figures)
    text = cli(gateway, monkeypatch, *options)
    assert "Example Corp: SecureHands units per month (Europe/Berlin)" in text
    for figures in ("2026-10 20 10 5 0 0 2 32", "2026-11 0 0 0 2 7 0 25",
                    "2026-12 0 3 0 1.5 0 0 23.5", "total 20 13 5 3.5 7 2 23.5"):  # fmt: skip
        assert re.search(r"\s+".join(map(re.escape, figures.split())), text), figures
    assert "Lots that expire within 90 days of 2027-01-04:" in text
    assert re.search(r"PO-D90\s+2027-04-03\s+90\s+2\.5\s+0\s", text)
    assert "PO-E91" not in text
    everyone = ("reports", "units", "--quarter", Q4, "--as-of", REVIEW.isoformat(), "--json")
    quarter = json.loads(cli(gateway, monkeypatch, *everyone))
    assert [c["customer"] for c in quarter["customers"]] == ["Example Corp", "Other GmbH"]


def the_chart_draws_each_movement_of_each_month(report: UnitsReport) -> None:
    svg = charts.units_chart(report)
    assert svg.startswith("<svg")
    assert svg.endswith("</svg>")
    assert "<script" not in svg
    assert "href" not in svg
    for label in ("2026-10", "2026-11", "2026-12", *charts.UNIT_KINDS):
        assert f">{label}</text>" in svg
    for units in ("20", "10", "5", "2", "7", "1.5", "3"):
        assert f">{units}</text>" in svg, units
    empty = UnitsReport(None, report.period, report.as_of, [])
    assert ">2026-11</text>" in charts.units_chart(empty)


EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?\s*https?:|url\(\s*["']?\s*https?:""", re.I)


def the_account_review_has_the_units(sink: Sink) -> None:
    sink.wait_until(lambda mails: any("2026 Q4" in subject(m) for m in mails if DANA in m.rcpt_tos))
    (review,) = [m.message for m in sink.settle_to(DANA) if "Account review 2026 Q4" in subject(m)]
    text = review.get_body(("plain",)).get_content().replace("\r\n", "\n")  # type: ignore[union-attr]
    for line in (
        "SECUREHANDS UNITS",
        "Available at the start       20",
        "  October 2026\n      purchased 20, reserved 10, released 0",
        "consumed 5, forfeited 0, expired 0, credited 2\n      available at its end 32",
        "  November 2026\n",
        "consumed 0, forfeited 2, expired 7, credited 0",
        "Reserved for agreed SOWs     3",
        "Available at the end         23.5",
        "Lots that expire within 90 days of 4 January 2027:",
        "PO-D90: 2.5 units left, valid until 3 April 2027 (90 days),",
        "0 of them not covered by an agreed Statement of Work",
    ):
        assert line in text, line
    assert "PO-E91" not in text
    html = review.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert not EXTERNAL.search(html)
    assert "SecureHands units" in html
    assert "<strong>23.5</strong>" in html
    related = next(p for p in review.walk() if p.get_content_type() == "multipart/related")
    images = [p for p in related.iter_parts() if p.get_content_type() == "image/png"]
    assert len(images) == 4  # the three of every review, and the units per month
    assert any(image["Content-ID"].startswith("<units.") for image in images)
    assert all(f'src="cid:{i["Content-ID"].strip("<>")}"' in html for i in images)
