"""The reports of a scripted quarter (tests/support/quarter.py) equal figures worked out by hand,
to the minute; the CSV says the same as the JSON; the account review reaches the TAM and the
Account Manager with its charts inside the mail and nothing fetched from outside.

How the instants fall (UTC; Berlin is UTC+2 until 03:00 on 25 October, UTC+1 after; London,
the SOC's zone, is UTC+1 until then and UTC after). Working time is Business Hours – Standard
of Example Corp: 09:00–17:00 Berlin, Monday to Friday, German public holidays off.
"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from cli.app import app
from gateway.reports import periods, queries
from gateway.reports.attainment import attainment
from gateway.reports.escalations import analysis
from gateway.reports.history import history
from gateway.storage.db import transaction
from gateway.storage.models import Deadline, RequestEvent, ServiceRequest
from tests.support.harness import Gateway
from tests.support.quarter import (
    ACCOUNT_MANAGER,
    REVIEW_AT,
    TAM,
    StoppedClock,
    directory_of_the_quarter,
    play,
)
from tests.support.sink import Received, Sink

Q4 = "2026Q4"
ZERO = {"open_minutes": 0.0, "waiting_minutes": 0.0, "resolved_minutes": 0.0}

# --- attainment (Initial Response: met before the warning at 80 %, warned after it, missed) ---
# H  P3, opened 09-30 23:10, answered 10-01 07:10: 8 h = 480 min < 19 h 12 min (80 % of 24 h): met.
#    open 23:10 -> closed 08:10: 540 min.
# A  P3, opened 10-24 10:00 (12:00 CEST), answered 10-25 09:00 (10:00 CET): 23 h = 1,380 min
#    elapsed (the clock face says 22 h), after the warning at 05:12: warned.
#    open 10-24 10:00 -> waiting 10-25 09:00 (1,380) -> open 10-26 08:00 (1,380 waiting) ->
#    resolved 12:00 (240 open) -> closed 10-28 12:00 (2,880 resolved); open 1,380 + 240 = 1,620.
# F  P3, opened 12-01 08:00, answered 12-02 10:00: 26 h = 1,560 min > 24 h: missed.
#    open 12-01 08:00 -> closed 12-03 09:00: 49 h = 2,940 min. One not-updated alert: its clock,
#    restarted by the SOC's #escalate at 12-01 09:00, was due 12-02 09:00; the tick at 09:30.
#    P3: median of 480, 1,380, 1,560 = 1,380; 90th percentile by nearest rank: the
#    ceil(0.9 × 3) = 3rd = 1,560. Attained 2 of 3 = 66.7 %. Open 540 + 1,620 + 2,940 = 5,100
#    (mean 1,700), waiting 1,380 (mean 460), resolved 2,880 (mean 960).
# B  P1 from 14:10 (its target 30 min from the opening at 14:00), answered 17:00: 180 min: missed.
#    Not-updated (1 h): restarted by the #priority mail at 14:10, alerts at the ticks 15:11 and
#    16:12 (the answer at 17:00 and the note at 11-04 16:00 restart it before any later tick).
#    open 11-03 14:00 -> resolved 11-05 10:00 (44 h = 2,640) -> closed 11-06 10:00 (1,440).
# C  P2 from 17:30, answered in the same mail 60 min after the opening (16:30), before the
#    warning at 96 min: met. open 11-13 16:30 -> closed 11-16 09:00: 64 h 30 min = 3,870.
# D  SecureHands, 8 working hours from Fri 10-23 15:00 CEST: Fri 15:00-17:00 (2 h), Mon 10-26
#    09:00 CET (08:00 UTC) on: warning at 6 h 24 min worked (Mon 12:24 UTC), due at 8 h (14:00
#    UTC). Answered Mon 13:00 UTC: 2 h + 5 h = 420 working min: warned.
#    open 10-23 13:00 -> closed 10-30 10:00: 165 h = 9,900 min.
# E  SecureHands from Thu 12-24 16:00 CET: 1 h on Thursday, Christmas Day and the weekend off,
#    Mon 12-28 from 08:00 UTC; answered 09:30 UTC: 60 + 90 = 150 working min, before the
#    warning (Mon 13:24 UTC): met. Still open at the review: 12-24 15:00 -> 01-04 09:00 =
#    258 h = 15,480 min. Its not-updated clock (restarted by the answer) fell due 12-29 09:30
#    and was first looked at by the tick of the review, 01-04 09:00: one alert.
# G  SecureHands from Thu 12-31 16:30 CET: 30 min on Thursday, New Year's Day and the weekend
#    off, due Mon 01-04 16:30 CET (15:30 UTC), after the review at 09:00 UTC: running.
#    Open 12-31 15:30 -> 01-04 09:00 = 89 h 30 min = 5,370. One not-updated alert at the
#    review's tick (due 01-01 15:30).
#    SecureHands: median of 150 and 420 = 285; nearest rank ceil(1.8) = 2nd = 420. Attained 2 of
#    2 decided = 100 %. Open 9,900 + 15,480 + 5,370 = 30,750 (mean over 3: 10,250).
# Z  opened 09-30 22:30 UTC = 23:30 BST on 30 September: Q3, in no figure of Q4.
GROUPS = [
    {"type": "incident", "priority": 1, "target": "30 minutes", "target_minutes": 30,
     "hours": "24x7", "requests": 1, "met": 0, "warned": 0, "missed": 1, "running": 0,
     "attainment_percent": 0.0, "answered": 1, "median_minutes": 180.0, "p90_minutes": 180.0,
     "not_updated_alerts": 2, "open_minutes": 2640.0, "waiting_minutes": 0.0,
     "resolved_minutes": 1440.0, "open_mean_minutes": 2640.0, "waiting_mean_minutes": 0.0,
     "resolved_mean_minutes": 1440.0},
    {"type": "incident", "priority": 2, "target": "2 hours", "target_minutes": 120,
     "hours": "24x7", "requests": 1, "met": 1, "warned": 0, "missed": 0, "running": 0,
     "attainment_percent": 100.0, "answered": 1, "median_minutes": 60.0, "p90_minutes": 60.0,
     "not_updated_alerts": 0, "open_minutes": 3870.0, "waiting_minutes": 0.0,
     "resolved_minutes": 0.0, "open_mean_minutes": 3870.0, "waiting_mean_minutes": 0.0,
     "resolved_mean_minutes": 0.0},
    {"type": "incident", "priority": 3, "target": "24 hours", "target_minutes": 1440,
     "hours": "24x7", "requests": 3, "met": 1, "warned": 1, "missed": 1, "running": 0,
     "attainment_percent": 66.7, "answered": 3, "median_minutes": 1380.0,
     "p90_minutes": 1560.0, "not_updated_alerts": 1, "open_minutes": 5100.0,
     "waiting_minutes": 1380.0, "resolved_minutes": 2880.0, "open_mean_minutes": 1700.0,
     "waiting_mean_minutes": 460.0, "resolved_mean_minutes": 960.0},
    {"type": "securehands", "priority": 3, "target": "8 working hours", "target_minutes": 480,
     "hours": "standard", "requests": 3, "met": 1, "warned": 1, "missed": 0, "running": 1,
     "attainment_percent": 100.0, "answered": 2, "median_minutes": 285.0, "p90_minutes": 420.0,
     "not_updated_alerts": 2, "open_minutes": 30750.0, "waiting_minutes": 0.0,
     "resolved_minutes": 0.0, "open_mean_minutes": 10250.0, "waiting_mean_minutes": 0.0,
     "resolved_mean_minutes": 0.0},
]  # fmt: skip
# The quarter: 8 SRs; met H, C, E; warned A, D; missed B, F; running G: 5 of 7 = 71.4 %.
# Alerts 2 + 1 + 2 = 5. Open 2,640 + 3,870 + 5,100 + 30,750 = 42,360 (mean 5,295); waiting
# 1,380 (172.5); resolved 1,440 + 2,880 = 4,320 (540).
TOTAL = {
    "customer": "Example Corp", "type": None, "priority": None, "target": None,
    "target_minutes": None, "hours": None, "requests": 8, "met": 3, "warned": 2, "missed": 2,
    "running": 1, "attainment_percent": 71.4, "answered": 7, "median_minutes": None,
    "p90_minutes": None, "not_updated_alerts": 5, "open_minutes": 42360.0,
    "waiting_minutes": 1380.0, "resolved_minutes": 4320.0, "open_mean_minutes": 5295.0,
    "waiting_mean_minutes": 172.5, "resolved_mean_minutes": 540.0,
}  # fmt: skip

# --- escalations --------------------------------------------------------------------------
# B (FortiGate 600E): asked by Alice 11-03 16:30; the SOC's answer at 17:00 is the plan
#    (30 min); asked again 11-04 09:00; still open 24 h after (P1) -> Director at the 16:31 tick.
# F (no product named): recorded by the SOC 12-01 09:00; plan 12-02 10:00 (25 h = 1,500 min);
#    de-escalated 12-03 09:00, before its 3 days. Median of 30 and 1,500 = 765; 90th = 1,500.
#    Months in London time: October none, November B, December F.
ESCALATION_GROUPS = [
    {"customer": "Example Corp", "product": None, "escalations": 1, "by_customer": 0,
     "by_soc": 1, "asked_again": 0, "planned": 1, "plan_median_minutes": 1500.0,
     "plan_p90_minutes": 1500.0, "director": 0, "still_open": 0},
    {"customer": "Example Corp", "product": "FortiGate 600E", "escalations": 1,
     "by_customer": 1, "by_soc": 0, "asked_again": 1, "planned": 1,
     "plan_median_minutes": 30.0, "plan_p90_minutes": 30.0, "director": 1, "still_open": 0},
]  # fmt: skip
ESCALATION_TOTAL = {
    "customer": "Example Corp", "product": None, "escalations": 2, "by_customer": 1,
    "by_soc": 1, "asked_again": 1, "planned": 2, "plan_median_minutes": 765.0,
    "plan_p90_minutes": 1500.0, "director": 1, "still_open": 0,
}  # fmt: skip
MONTHS = [
    {"month": "2026-10", "escalations": 0, "director": 0},
    {"month": "2026-11", "escalations": 1, "director": 1},
    {"month": "2026-12", "escalations": 1, "director": 0},
]

# --- history: (letter, type, asked, priority, product, entitlement, state, opened, initial
# response, resolved, closed); resolved is when it last reached resolved or closed.
HISTORY = [
    ("H", "incident", None, 3, None, "unnamed", "closed", "2026-09-30T23:10",
     "2026-10-01T07:10", "2026-10-01T08:10", "2026-10-01T08:10"),
    ("D", "securehands", None, 3, "FortiGate 600E", "covered", "closed", "2026-10-23T13:00",
     "2026-10-26T13:00", "2026-10-30T10:00", "2026-10-30T10:00"),
    ("A", "incident", None, 3, "FortiGate 600E", "covered", "closed", "2026-10-24T10:00",
     "2026-10-25T09:00", "2026-10-26T12:00", "2026-10-28T12:00"),
    ("B", "incident", 1, 1, "FortiGate 600E", "covered", "closed", "2026-11-03T14:00",
     "2026-11-03T17:00", "2026-11-05T10:00", "2026-11-06T10:00"),
    ("C", "incident", None, 2, "Check Point 6200", "expired", "closed", "2026-11-13T16:30",
     "2026-11-13T17:30", "2026-11-16T09:00", "2026-11-16T09:00"),
    ("F", "incident", None, 3, None, "unnamed", "closed", "2026-12-01T08:00",
     "2026-12-02T10:00", "2026-12-03T09:00", "2026-12-03T09:00"),
    ("E", "securehands", None, 3, None, "unnamed", "open", "2026-12-24T15:00",
     "2026-12-28T09:30", None, None),
    ("G", "securehands", None, 3, None, "unnamed", "open", "2026-12-31T15:30", None, None, None),
]  # fmt: skip
B_STEPS = [
    ("2026-11-03T16:30", "opened"),
    ("2026-11-03T16:30", "duty_management_alerted"),
    ("2026-11-03T16:30", "account_manager_notified"),
    ("2026-11-03T16:30", "requester_told"),
    ("2026-11-03T17:00", "plan_given"),
    ("2026-11-04T09:00", "requested_again"),
    ("2026-11-04T09:00", "requester_told"),
    ("2026-11-04T16:31", "director_escalated"),
    ("2026-11-05T10:00", "closed"),
]
# Open at the review, oldest first: Z (waiting since the SOC's question), E, G.
OPEN = [
    ("Z", "waiting", "2026-10-01T09:00", "SOC", "Please send us the certificate request."),
    ("E", "open", "2026-12-28T09:30", "SOC", "We have scheduled the rule review for January."),
    ("G", "open", "2026-12-31T15:30", "customer", "Tidy our policy."),
]


def utc_iso(minute: str | None) -> str | None:
    return f"{minute}:00+00:00" if minute else None


def reports_of(gateway: Gateway) -> dict[str, dict[str, Any]]:
    rt = gateway.runtime
    period = periods.quarter(Q4, rt.settings.soc_timezone)
    with transaction(rt.sessions, readonly=True) as conn:
        ref = queries.customer_named(conn, "Example Corp")
        assert ref is not None
        return {
            "sla": attainment(conn, period, REVIEW_AT, ref.name, ref.id).as_json(),
            "overall": attainment(conn, period, REVIEW_AT).as_json(),
            "history": history(conn, ref.name, ref.id, period, REVIEW_AT).as_json(),
            "escalations": analysis(conn, period, REVIEW_AT, ref.name, ref.id).as_json(),
        }


@pytest.mark.parametrize("database", ["sqlite_url", "postgres_url"])
def test_a_scripted_quarter_reports_the_hand_worked_figures_in_json_csv_and_the_review_mail(
    database: str,
    request: pytest.FixtureRequest,
    make_gateway: Any,
    sink: Sink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gateway = make_gateway(
        database_url=request.getfixturevalue(database),
        clock=StoppedClock(),
        prepare=directory_of_the_quarter,
    )
    ids = play(gateway, sink)
    with gateway.runtime.sessions.begin() as session:
        job = session.scalars(select(Deadline.next_at).where(Deadline.kind == "account_review"))
        assert job.one() == datetime(2027, 4, 1, 8, 0, tzinfo=UTC)  # 09:00 BST, 1 April
    found = reports_of(gateway)
    a_history_is_each_change_of_state(gateway, ids["A"])
    figures_are_the_hand_worked_ones(found, ids)
    csv_says_what_json_says(gateway, monkeypatch, found)
    the_review_reaches_the_tam_and_the_account_manager(sink, ids)


def figures_are_the_hand_worked_ones(found: dict[str, dict[str, Any]], ids: dict[str, str]) -> None:

    sla = found["sla"]
    assert (sla["from"], sla["to"], sla["timezone"]) == (
        "2026-10-01",
        "2026-12-31",
        "Europe/London",
    )
    assert [{k: v for k, v in g.items() if k != "customer"} for g in sla["groups"]] == GROUPS
    assert sla["total"] == TOTAL
    assert sla["customers"] == []
    overall = found["overall"]
    assert overall["customer"] is None
    assert overall["groups"] == [{"customer": None, **g} for g in GROUPS]
    assert overall["customers"] == [TOTAL]  # Other GmbH opened nothing
    assert overall["total"] == {**TOTAL, "customer": None}

    escalations = found["escalations"]
    assert escalations["groups"] == ESCALATION_GROUPS
    assert escalations["total"] == ESCALATION_TOTAL
    assert escalations["months"] == MONTHS

    listed = found["history"]["requests"]
    assert [r["sr_id"] for r in listed] == [ids[h[0]] for h in HISTORY]
    for row, (letter, kind, asked, priority, product, covered, state, *times) in zip(
        listed, HISTORY, strict=True
    ):
        assert (row["type"], row["priority_requested"], row["priority"]) == (kind, asked, priority)
        assert (row["product"], row["entitlement"], row["state"]) == (product, covered, state)
        stamps = (
            row["opened_at"],
            row["initial_response_at"],
            row["resolved_at"],
            row["closed_at"],
        )
        assert stamps == tuple(utc_iso(t) for t in times), letter
    by_letter = {letter: row for (letter, *_), row in zip(HISTORY, listed, strict=True)}
    (escalation_b,) = by_letter["B"]["escalations"]
    assert (escalation_b["source"], escalation_b["level"]) == ("customer", "director")
    assert [(s["at"], s["step"]) for s in escalation_b["steps"]] == [
        (utc_iso(at), step) for at, step in B_STEPS
    ]
    (escalation_f,) = by_letter["F"]["escalations"]
    assert (escalation_f["source"], escalation_f["level"]) == ("soc", "duty_management")
    assert escalation_f["closed_at"] == utc_iso("2026-12-03T09:00")
    assert [e["escalations"] for e in listed if e["escalations"]] == [
        [escalation_b],
        [escalation_f],
    ]

    still_open = found["history"]["open"]
    assert [(o["sr_id"], o["state"], o["last_update_at"], o["last_update_by"], o["last_update"])
            for o in still_open] == [
        (ids[letter], state, utc_iso(at), by, text) for letter, state, at, by, text in OPEN
    ]  # fmt: skip


def a_history_is_each_change_of_state(gateway: Gateway, sr_id: str) -> None:
    """A's changes, each leaving the state the one before entered, by whoever made them."""
    with gateway.runtime.sessions.begin() as session:
        rows = session.execute(
            select(RequestEvent.at, RequestEvent.from_state, RequestEvent.to_state, RequestEvent.by)
            .join(ServiceRequest, ServiceRequest.id == RequestEvent.sr_id)
            .where(ServiceRequest.public_id == sr_id)
            .order_by(RequestEvent.id)
        ).all()
    analyst = "analyst@securecall.example"
    assert [(r.at.isoformat(), r.from_state, r.to_state, r.by) for r in rows] == [
        (utc_iso("2026-10-24T10:00"), None, "open", "alice@example.com"),
        (utc_iso("2026-10-25T09:00"), "open", "waiting", analyst),
        (utc_iso("2026-10-26T08:00"), "waiting", "open", "alice@example.com"),
        (utc_iso("2026-10-26T12:00"), "open", "resolved", analyst),
        (utc_iso("2026-10-28T12:00"), "resolved", "closed", analyst),
    ]


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
    """A CSV cell says what the JSON value says."""
    if value is None:
        return cell == ""
    if isinstance(value, bool):
        return cell == ("true" if value else "false")
    if isinstance(value, int | float):
        return float(cell) == value
    return cell == str(value)


def csv_says_what_json_says(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch, found: dict[str, dict[str, Any]]
) -> None:
    """The command prints the same JSON; its CSV, read with the csv module, the same figures."""
    as_of = ("--as-of", REVIEW_AT.isoformat())
    cases = (("sla", "Example Corp", "sla"), ("sla", None, "overall"), ("escalations", None, "x"))
    for report, customer, key in cases:
        chosen = ("--customer", customer) if customer else ()
        options = (report, *chosen, "--quarter", Q4, *as_of)
        printed = json.loads(cli(gateway, monkeypatch, "reports", *options, "--json"))
        if key != "x":
            assert printed == found[key]
        else:  # overall: the same escalations as Example Corp's, the customer not named
            assert printed["groups"] == found["escalations"]["groups"]
            assert printed["total"] == {**found["escalations"]["total"], "customer": None}
        table = cli(gateway, monkeypatch, "reports", *options, "--csv")
        rows = list(csv.DictReader(io.StringIO(table)))
        expected = [*(("group", g) for g in printed["groups"]),
                    *(("month", m) for m in printed.get("months", [])),
                    *(("customer", c) for c in printed.get("customers", [])),
                    ("total", printed["total"])]  # fmt: skip
        assert [r["scope"] for r in rows] == [scope for scope, _ in expected]
        for row, (_scope, figures) in zip(rows, expected, strict=True):
            assert all(same(row[k], v) for k, v in figures.items()), (row, figures)
    span = ("--from", "2026-10-01", "--to", "2026-12-31")
    options = ("history", "--customer", "Example Corp", *span, *as_of)
    printed = json.loads(cli(gateway, monkeypatch, "reports", *options, "--json"))
    assert printed == found["history"]
    rows = list(
        csv.DictReader(io.StringIO(cli(gateway, monkeypatch, "reports", *options, "--csv")))
    )
    assert [r["sr_id"] for r in rows] == [
        *(r["sr_id"] for r in printed["requests"]),
        printed["open"][0]["sr_id"],  # Z: open, not of the period
    ]
    for row, listed in zip(rows, printed["requests"], strict=False):
        figures = {k: v for k, v in listed.items() if k != "escalations"}
        assert all(same(row[k], v) for k, v in figures.items()), (row, figures)
        assert int(row["escalations"]) == len(listed["escalations"])
    assert (rows[-1]["in_period"], rows[-1]["state"]) == ("false", "waiting")


EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?\s*https?:|url\(\s*["']?\s*https?:""", re.I)


def review_mails(sink: Sink, address: str, quarter: str) -> list[EmailMessage]:
    """The account reviews of `quarter` that reached `address`, once there is one; sent once."""

    def of_quarter(mails: list[Received]) -> list[EmailMessage]:
        return [
            m.message for m in mails if address in m.rcpt_tos and quarter in m.message["Subject"]
        ]

    sink.wait_until(lambda mails: bool(of_quarter(mails)))
    sink.settle()
    return of_quarter(sink.to(address))


def the_review_reaches_the_tam_and_the_account_manager(sink: Sink, ids: dict[str, str]) -> None:
    # Q3's was sent by the first tick after 1 October 09:00 BST (the job armed at the start).
    (q3,) = review_mails(sink, TAM, "2026 Q3")
    assert ids["Z"] in q3.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    for address, role in ((TAM, "TAM"), (ACCOUNT_MANAGER, "Account Manager")):
        (review,) = review_mails(sink, address, "2026 Q4")
        assert review["Subject"] == "Account review 2026 Q4: Example Corp"
        assert review["Auto-Submitted"] == "auto-generated"
        text = review.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert f"as {role} of Example Corp" in text
        assert "Initial Response attained    71.4 %" in text
        assert "Escalations                  2, 1 reached Director level" in text
        assert all(ids[letter] in text for letter in "HDABCFEGZ")
        html_part = review.get_body(("html",))
        assert html_part is not None
        html = html_part.get_content()
        assert not EXTERNAL.search(html), "the review's HTML refers to something outside it"
        assert "<script" not in html.lower()
        related = next(p for p in review.walk() if p.get_content_type() == "multipart/related")
        images = [p for p in related.iter_parts() if p.get_content_type() == "image/png"]
        assert len(images) == 3
        for image in images:
            cid = image["Content-ID"].strip("<>")
            assert f'src="cid:{cid}"' in html
            assert image.get_content().startswith(b"\x89PNG\r\n\x1a\n")
        assert "Incident P3" in html
        assert "66.7 %" in html
