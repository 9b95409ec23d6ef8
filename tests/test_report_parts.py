"""The reports' parts: their targets agree with the clocks', periods and the quarterly schedule,
percentiles, the SVG charts, the mail's inline images, the command line's refusals, and the
request_events of SRs older than the table."""

from __future__ import annotations

import json
import struct
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import select, text
from typer.testing import CliRunner

from cli.app import app
from gateway.core.hours import Calendar
from gateway.core.settings import Settings
from gateway.outbound.sending import Claimed
from gateway.reports import charts, periods, stats, targets
from gateway.reports.units import UnitsReport
from gateway.sla import service_levels
from gateway.storage.db import alembic_config, make_engine
from gateway.storage.models import Delivery
from workers.composer import Inline, compose
from workers.images import png
from workers.render import Rendered

LONDON = "Europe/London"
SOC = Calendar(LONDON, "GB")


def test_the_reports_targets_are_the_clocks_targets() -> None:
    settings = Settings(secret_key="x")
    for (kind, priority), goal in targets.GOALS.items():
        clock = service_levels.target("initial_response", kind, priority or 3, settings)
        assert clock.amount == timedelta(minutes=goal.minutes), kind
        assert (clock.standard_hours, clock.label) == (goal.standard_hours, goal.label)


def test_a_quarter_is_its_days_in_the_socs_time_zone() -> None:
    q4 = periods.quarter("2026q4", LONDON)
    assert (q4.first, q4.last, q4.label) == (date(2026, 10, 1), date(2026, 12, 31), "2026 Q4")
    assert q4.start == datetime(2026, 9, 30, 23, 0, tzinfo=UTC)  # midnight BST
    assert q4.end == datetime(2027, 1, 1, 0, 0, tzinfo=UTC)  # midnight GMT
    assert q4.months() == ["2026-10", "2026-11", "2026-12"]
    assert periods.days(date(2026, 11, 2), date(2026, 11, 8), LONDON).label == (
        "2026-11-02 to 2026-11-08"
    )
    assert periods.quarter_before(datetime(2027, 1, 4, 9, tzinfo=UTC), LONDON) == q4
    for wrong in ("2026Q5", "Q4 2026", "2026"):
        with pytest.raises(periods.BadPeriod):
            periods.quarter(wrong, LONDON)
    with pytest.raises(periods.BadPeriod):
        periods.days(date(2026, 12, 31), date(2026, 10, 1), LONDON)


@pytest.mark.parametrize(
    ("after", "due"),
    [
        # 1 January 2027 is a Friday and a holiday in the UK; the 2nd and 3rd a weekend.
        (datetime(2026, 12, 2, 7, 0, tzinfo=UTC), datetime(2027, 1, 4, 9, 0, tzinfo=UTC)),
        # 1 April 2027 is a Thursday, in summer time: 09:00 BST is 08:00 UTC.
        (datetime(2027, 1, 4, 9, 0, tzinfo=UTC), datetime(2027, 4, 1, 8, 0, tzinfo=UTC)),
        # 1 October 2026 at 09:00 BST, not yet passed at 07:59 UTC.
        (datetime(2026, 10, 1, 7, 59, tzinfo=UTC), datetime(2026, 10, 1, 8, 0, tzinfo=UTC)),
    ],
)
def test_the_account_review_falls_on_the_first_working_day_of_each_quarter(
    after: datetime, due: datetime
) -> None:
    assert periods.next_review("09:00", SOC, after) == due


def test_the_90th_percentile_is_a_value_by_nearest_rank() -> None:
    assert stats.p90(list(range(1, 11))) == 9  # ceil(9.0) = the 9th of 10
    assert stats.p90(list(range(1, 12))) == 10  # ceil(9.9) = the 10th of 11
    assert stats.p90([7.0]) == 7.0
    assert stats.median([1.0, 2.0, 4.0, 10.0]) == 3.0
    assert stats.p90([]) is None
    assert stats.median([]) is None


def test_the_charts_are_plain_svg_with_every_text_escaped() -> None:
    hostile = '<script>alert(1)</script> & "http://evil.example/x.png"'
    drawn = [
        charts.attainment_bars(hostile, [charts.StackedRow(hostile, 3, 1, 1, 0)]),
        charts.attainment_bars("none", []),
        charts.histogram(hostile, [10.0, 95.0, 450.0], 100.0),
        charts.histogram("empty", [], 30.0),
        charts.monthly_bars(hostile, [("2026-10", 2, 1), ("2026-11", 0, 0)]),
        charts.unit_bars(hostile, [charts.UnitMonth(hostile, {"purchased": Decimal("2.5")})]),
        charts.unit_bars("no months", []),
    ]
    for chart in drawn:
        root = ET.fromstring(chart.svg)
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
        assert (root.get("width"), root.get("height")) == (str(chart.width), str(chart.height))
        names = {element.tag.rsplit("}", 1)[1] for element in root.iter()}
        assert names <= {"svg", "rect", "text", "line"}
        assert not any(key.endswith("href") for e in root.iter() for key in e.attrib)
    texts = ["".join(e.itertext()) for e in ET.fromstring(drawn[0].svg).iter() if e.text]
    assert hostile in texts


def test_a_chart_becomes_a_png_twice_its_size() -> None:
    chart = charts.monthly_bars("Escalations per month", [("2026-10", 2, 1)])
    data = png(chart.svg)
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk
    assert (width, height) == (2 * chart.width, 2 * chart.height)


def _claimed() -> Claimed:
    return Claimed(
        id=1,
        template="account_review",
        audience="staff",
        language="en",
        recipient="tina@example.com",
        context={},
        message_id="<review.1@securecall.example>",
        in_reply_to=None,
        references="",
        auto_submitted="auto-generated",
        attempts=1,
    )


def test_inline_images_go_beside_the_html_in_a_related_part() -> None:
    rendered = Rendered("Review", "text\n", '<p><img src="cid:chart.1@securecall.example"></p>')
    settings = Settings(secret_key="x")
    image = Inline(cid="chart.1@securecall.example", filename="chart.png", data=b"\x89PNG...")
    message = message_from_bytes(
        compose(_claimed(), rendered, settings, inline=[image]).as_bytes(), policy=policy.default
    )
    assert message.get_content_type() == "multipart/alternative"
    plain, related = message.iter_parts()  # type: ignore[attr-defined]
    assert plain.get_content_type() == "text/plain"
    assert related.get_content_type() == "multipart/related"
    assert related.get_param("type") == "text/html"
    html, png_part = related.iter_parts()
    assert html.get_content_type() == "text/html"
    assert png_part["Content-ID"] == "<chart.1@securecall.example>"
    assert png_part.get_content_disposition() == "inline"
    assert png_part.get_content() == b"\x89PNG..."
    without = compose(_claimed(), rendered, settings)
    assert [p.get_content_type() for p in without.walk()] == [
        "multipart/alternative",
        "text/plain",
        "text/html",
    ]


@pytest.fixture
def gateway_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("GATEWAY_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("GATEWAY_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, list(args), catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result.output

    return run


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("sla", "--quarter", "2026Q4", "--json", "--csv"), "--json or --csv, not both"),
        (("sla",), "give --from and --to, or --quarter"),
        (("sla", "--from", "2026-10-01"), "give --from and --to, or --quarter"),
        (("sla", "--quarter", "2026Q4", "--from", "2026-10-01"), "or --quarter"),
        (("sla", "--quarter", "2026Q9"), "not a quarter such as 2026Q4"),
        (("escalations", "--from", "2026-12-01", "--to", "2026-11-01"), "ends (2026-11-01)"),
        (("history", "--customer", "Nobody", "--quarter", "2026Q4"), "no customer named"),
        (("sla", "--quarter", "2026Q4", "--as-of", "yesterday"), "not an instant"),
        (("units", "--customer", "Nobody", "--quarter", "2026Q4"), "no customer named"),
        (("units", "--quarter", "2026Q4", "--json", "--csv"), "--json or --csv, not both"),
    ],
)
def test_the_report_commands_refuse_what_they_cannot_answer(
    gateway_cli: Any, args: tuple[str, ...], says: str
) -> None:
    assert says in gateway_cli("reports", *args, code=2)


def test_an_empty_quarter_reports_zeros_and_its_csv_has_a_header(gateway_cli: Any) -> None:
    gateway_cli("demo")
    shown = json.loads(gateway_cli("reports", "sla", "--quarter", "2026Q4", "--json"))
    assert (shown["groups"], shown["total"]["requests"]) == ([], 0)
    assert shown["total"]["attainment_percent"] is None
    header = gateway_cli("reports", "escalations", "--quarter", "2026Q4", "--csv").splitlines()[0]
    assert header.startswith("scope,month,customer,product,escalations,by_customer,by_soc")
    assert "(none)" in gateway_cli("reports", "history", "--customer", "Example Corp",
                                   "--quarter", "2026Q4")  # fmt: skip
    # no customer has SecureHands units: none listed
    units = json.loads(gateway_cli("reports", "units", "--quarter", "2026Q4", "--json"))
    assert units["customers"] == []
    header = gateway_cli("reports", "units", "--quarter", "2026Q4", "--csv").splitlines()
    assert header == [",".join(UnitsReport.columns)]
    assert "(none)" in gateway_cli("reports", "units", "--quarter", "2026Q4")


def test_send_review_writes_one_mail_per_tam_and_account_manager(
    gateway_cli: Any, tmp_path: Path
) -> None:
    gateway_cli("demo")
    gateway_cli("contacts", "add", "tina@example.com", "--customer", "Example Corp",
                "--name", "Tina Tam", "--role", "tam")  # fmt: skip
    gateway_cli("customers", "add", "Quiet Ltd")
    said = gateway_cli(
        "reports", "send-review", "--customer", "Example Corp", "--quarter", "2026Q4"
    )
    assert said.strip() == (
        "account review 2026 Q4 of Example Corp to tina@example.com, dana@example.com"
    )
    assert "has no contact with the role tam or account_manager" in gateway_cli(
        "reports", "send-review", "--customer", "Quiet Ltd", "--quarter", "2026Q4", code=2
    )
    engine = make_engine(f"sqlite:///{tmp_path / 'cli.db'}")
    with engine.connect() as conn:
        rows = conn.execute(
            select(Delivery.recipient, Delivery.queue, Delivery.context).where(
                Delivery.template == "account_review"
            )
        ).all()
    engine.dispose()
    assert sorted((r.recipient, r.queue) for r in rows) == [
        ("dana@example.com", "bulk"),
        ("tina@example.com", "bulk"),
    ]
    assert {r.context["role"] for r in rows} == {"TAM", "Account Manager"}
    assert all(len(r.context["images"]) == 3 for r in rows)


def test_srs_older_than_their_history_get_their_opening_and_closing(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    config = alembic_config(engine)
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0006")
        connection.execute(
            text(
                "INSERT INTO customers (id, name, timezone, country, created_at) "
                "VALUES (1, 'C', 'Europe/Berlin', 'DE', '2026-11-18 09:00:00')"
            )
        )
        for sr, state, closed in ((1, "open", None), (2, "closed", "2026-11-20 10:00:00")):
            connection.execute(
                text(
                    "INSERT INTO service_requests (id, public_id, customer_id, title, type, "
                    "priority, requested_reason, state, language, entitlement, created_at, "
                    "updated_at, closed_at) VALUES (:id, :public, 1, 't', 'incident', 3, '', "
                    ":state, 'en', '{}', '2026-11-18 09:00:00', '2026-11-18 09:00:00', :closed)"
                ),
                {"id": sr, "public": f"SR-AAAA-000{sr}", "state": state, "closed": closed},
            )
        connection.commit()
        command.upgrade(config, "head")
        rows = connection.execute(
            text("SELECT sr_id, at, from_state, to_state FROM request_events ORDER BY sr_id, at")
        ).all()
    engine.dispose()
    assert [(r.sr_id, r.at[:19], r.from_state, r.to_state) for r in rows] == [
        (1, "2026-11-18 09:00:00", None, "open"),
        (2, "2026-11-18 09:00:00", None, "open"),
        (2, "2026-11-20 10:00:00", "open", "closed"),
    ]
