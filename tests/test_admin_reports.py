"""The report pages of the admin web: service-level attainment, SR history, escalation analysis
for a customer and a period, as tables and server-rendered SVG charts, in headless Chromium;
none of them for a visitor who is not signed in."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

import pytest

from gateway.admin.reports import REPORTS
from tests.support import admin as support
from tests.support.admin import ADMIN, PASSWORD, AdminWeb, add_admin, shot
from tests.support.harness import Gateway, mail, sr_id_of
from tests.support.securehands import buy
from tests.support.services import free_port
from tests.support.sink import Sink

HISTORY = "/admin/reports/history?customer=Example+Corp"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with support.browser() as launched:
        yield launched


@pytest.fixture(params=["sqlite_url", "postgres_url"])
def reported(
    make_gateway: Callable[..., Gateway], sink: Sink, request: pytest.FixtureRequest
) -> Iterator[tuple[AdminWeb, list[str]]]:
    """A gateway whose quarter (2026Q4, the test clock's) holds three SRs of Example Corp, one
    of them escalated by the customer and one answered by the SOC, and one of Other GmbH, and
    two lots of SecureHands units; its admin web."""
    port = free_port()
    gateway = make_gateway(
        database_url=request.getfixturevalue(request.param),
        web_port=port,
        public_url=f"http://127.0.0.1:{port}",
    )
    add_admin(gateway.runtime)
    for n, subject in enumerate(("VPN tunnel down", "Licence question", "Log export fails")):
        assert (
            gateway.send(mail(subject=subject, message_id=f"<report-{n}@example.com>")).code == 250
        )
    otto = mail(sender="otto@other.example", subject="Firewall langsam")
    assert gateway.send(otto, mail_from="otto@other.example").code == 250
    acks = sink.wait_to("alice@example.com", count=3, timeout=30)
    sr_ids = sorted(sr_id_of(ack) for ack in acks)
    escalate = mail(subject=f"[{sr_ids[0]}] please escalate", body="Still down. Escalate.\n")
    assert gateway.send(escalate).code == 250
    sink.wait_until(lambda got: any("scalat" in m.message["Subject"] for m in got), timeout=30)
    lead = "lead@securecall.example"  # SOC staff: the Initial Response of one of them
    answer = mail(sender=lead, subject=f"Re: [{sr_ids[1]}]", body="It is fine.\n")
    assert gateway.send(answer, mail_from=lead).code == 250
    sink.wait_until(lambda got: any("It is fine." in m.text for m in got), timeout=30)
    buy(gateway, "5", date(2026, 1, 15), "PO-4100")  # SecureHands units: expires in January
    buy(gateway, "20", date(2026, 11, 2), "PO-4711")
    web = AdminWeb(gateway.runtime, port).start()
    yield web, sr_ids
    web.stop()


def test_in_a_browser_each_report_page_shows_its_tables_and_charts(
    reported: tuple[AdminWeb, list[str]], browser: Any
) -> None:
    web, sr_ids = reported
    context = browser.new_context(base_url=web.base)
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    try:
        page.goto("/admin/login?next=/admin/reports")
        page.fill("#email", ADMIN)
        page.fill("#password", PASSWORD)
        page.click("#sign-in")
        page.wait_for_url("**/admin/reports")
        assert [page.inner_text(f"#reports a >> nth={i}") for i in range(len(REPORTS))] == [
            r.title for r in REPORTS
        ]
        page.click("text=Service-level attainment")
        assert page.inner_text("#period") == "2026 Q4"  # the quarter so far, by default
        assert page.inner_text("#total-requests") == "4"
        assert page.inner_text("#total-attainment") == "100.0 %"  # one answered, in time
        assert page.locator(".chart svg").count() == 2  # drawn by the gateway, inline
        assert "Incident P3" in page.inner_text("#groups")
        assert "Other GmbH" in page.inner_text("#customers")
        shot(page, "report-sla")
        page.select_option("#customer", "Example Corp")  # the form: one customer's
        page.click("#show")
        assert page.inner_text("#period") == "2026 Q4, Example Corp"
        assert page.inner_text("#total-requests") == "3"
        shot(page, "report-sla-customer")

        page.goto("/admin/reports/history")
        assert "Choose a customer." in page.inner_text("main")
        page.select_option("#customer", "Example Corp")
        page.click("#show")
        listed = page.inner_text("#history")
        assert all(sr_id in listed for sr_id in sr_ids)
        assert "Licence question" in listed
        assert sr_ids[0] in page.inner_text("#escalations")
        assert len(page.locator("#open tr").all()) == 4  # a header and the three still open
        shot(page, "report-history")

        page.goto("/admin/reports/escalations?quarter=2026Q4")
        assert page.inner_text("#total-escalations") == "1"
        assert page.locator(".chart svg").count() == 1
        assert "2026-11" in page.inner_text("#months")
        shot(page, "report-escalations")

        page.goto("/admin/reports/units?customer=Example+Corp")
        assert page.inner_text("h2.customer") == "Example Corp (Europe/Berlin)"
        assert page.locator(".chart svg").count() == 1
        months = page.inner_text("table.units")
        assert "2026-11\t20" in months  # PO-4711's 20 units, bought in November
        assert "PO-4100" in page.inner_text("table.expiring")  # valid until 14 January
        shot(page, "report-units")

        page.goto("/admin/reports/sla?from=2026-12-01&to=2026-11-01")
        assert "before it begins" in page.inner_text("#error")
        page.click("#sign-out")
        page.wait_for_url("**/admin/login")
        for report in REPORTS:  # signed out: none of them any more
            page.goto(f"/admin/reports/{report.name}?customer=Example+Corp")
            assert "/admin/login?next=" in page.url
            assert page.locator("#groups, #history, .chart").count() == 0
    finally:
        context.close()
    assert [p for p in problems if "status of 400" not in p] == []


def test_a_visitor_who_is_not_signed_in_sees_none_of_the_reports(
    reported: tuple[AdminWeb, list[str]],
) -> None:
    web, sr_ids = reported
    client = web.client()
    for path in ["/admin/reports", *(f"/admin/reports/{r.name}" for r in REPORTS), HISTORY]:
        answer = client.get(path)
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith("/admin/login?next=")
        assert not any(sr_id in answer.text for sr_id in sr_ids)
    signed_in = web.signed_in()
    for path in ["/admin/reports", *(f"/admin/reports/{r.name}" for r in REPORTS), HISTORY]:
        assert signed_in.get(path).status_code == 200, path


def test_a_period_or_customer_that_cannot_be_read_is_said_and_nothing_reported(
    reported: tuple[AdminWeb, list[str]],
) -> None:
    web, _ = reported
    client = web.signed_in()
    for query, said in (
        ({"quarter": "2026Q5"}, "not a quarter such as 2026Q4"),
        ({"from": "2026-10-01", "to": "yesterday"}, "give both days as YYYY-MM-DD"),
        ({"customer": "Nobody Ltd"}, "no customer named &#39;Nobody Ltd&#39;"),
    ):
        answer = client.get("/admin/reports/sla", params=query)
        assert answer.status_code == 400
        assert said in answer.text
        assert 'id="groups"' not in answer.text
    assert client.get("/admin/reports/units-of-nothing").status_code == 404
