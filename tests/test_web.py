"""R4.3, RFC 8058: the one-click unsubscribe of a bulletin's link, its page, and /healthz, on the
real web side (Starlette under uvicorn), and in a real browser (headless Chromium)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, select

from gateway.core.runtime import Runtime
from gateway.edges.web import WebServer
from gateway.outbound.outbox import Outbox, make_broker
from gateway.storage.db import make_sessions
from gateway.storage.models import Contact, Delivery, Subscription, SubscriptionChange
from gateway.sus import bulletins, tokens
from gateway.sus.fanout import fan_out
from tests.support.bulletins import ADMIN, new_bulletin, quiet_runtime, subscribe_demo
from tests.support.harness import Gateway, Process, mail, settings_env
from tests.support.services import free_port, missing
from tests.support.sink import Received, Sink
from workers.bulk import deliver_bulk
from workers.render import Renderer
from workers.transport import make_transport

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
ONE_CLICK = {"content-type": "application/x-www-form-urlencoded"}


class Web:
    def __init__(self, gateway: Gateway, base: str) -> None:
        self.gateway, self.base = gateway, base
        self.client = httpx.Client(base_url=base, timeout=30)

    @property
    def rt(self) -> Runtime:
        return self.gateway.runtime

    def token(self, address: str) -> str:
        return tokens.sign(subscription_of(self.rt, address).id, self.rt.keys)


@pytest.fixture
def web(make_gateway: Callable[..., Gateway]) -> Iterator[Web]:
    port = free_port()
    gateway = make_gateway(web_port=port, public_url=f"http://127.0.0.1:{port}")
    server = WebServer(gateway.runtime, "127.0.0.1", port)
    server.start()
    shown = Web(gateway, f"http://127.0.0.1:{port}")
    yield shown
    shown.client.close()
    server.stop()


@pytest.fixture(params=["sqlite_url", "postgres_url"])
def rt_without_workers(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Runtime]:
    """A runtime without workers, on SQLite and on PostgreSQL."""
    with quiet_runtime(tmp_path, request.getfixturevalue(request.param)) as runtime:
        yield runtime


def subscription_of(rt: Runtime, address: str) -> Subscription:
    with rt.sessions.begin() as session:
        contact = session.scalars(select(Contact).where(Contact.email == address)).one()
        return session.scalars(
            select(Subscription).where(Subscription.contact_id == contact.id)
        ).one()


def trail(rt: Runtime, address: str) -> list[tuple[str, str, str]]:
    subscription = subscription_of(rt, address)
    with rt.sessions.begin() as session:
        changes = session.scalars(
            select(SubscriptionChange)
            .where(SubscriptionChange.subscription_id == subscription.id)
            .order_by(SubscriptionChange.id)
        )
        return [(c.to_state, c.by, c.how) for c in changes]


def unsubscribe_link(received: Received) -> str:
    """The https (here: http) link of List-Unsubscribe, as a mail client reads it (RFC 2369)."""
    first = received.message["List-Unsubscribe"].split(",")[0]
    return first.strip().strip("<>")


def publish(rt: Runtime, title: str) -> int:
    bulletin_id = new_bulletin(rt, title)
    bulletins.publish(rt, bulletin_id, ADMIN, hand_over=True)
    return bulletin_id


def test_the_page_says_what_stops_and_showing_it_unsubscribes_nobody(web: Web) -> None:
    subscribe_demo(web.rt, "alice@example.com", kinds="patch,upgrade")
    page = web.client.get(f"/u/{web.token('alice@example.com')}")
    assert page.status_code == 200
    assert "FortiGate 600E" in page.text
    assert "patches, software upgrades" in page.text
    assert '<button type="submit" id="unsubscribe">' in page.text
    assert page.headers["referrer-policy"] == "no-referrer"  # the token stays in this page
    assert subscription_of(web.rt, "alice@example.com").state == "active"
    assert trail(web.rt, "alice@example.com") == [("active", ADMIN, "cli")]


def test_a_one_click_post_unsubscribes_at_once_and_the_next_bulletin_skips_the_contact(
    web: Web, sink: Sink
) -> None:
    subscribe_demo(web.rt, "alice@example.com", "bernd@example.de")
    publish(web.rt, "First advisory")
    (mail,) = sink.wait_to("alice@example.com")
    link = unsubscribe_link(mail)
    assert link.startswith(f"{web.base}/u/")
    # RFC 8058 §3.1: what a mail client POSTs to the https URI of List-Unsubscribe
    answer = web.client.post(link, content=b"List-Unsubscribe=One-Click", headers=ONE_CLICK)
    assert answer.status_code == 200
    assert "You are unsubscribed" in answer.text
    assert subscription_of(web.rt, "alice@example.com").state == "unsubscribed"
    assert trail(web.rt, "alice@example.com")[-1] == (
        "unsubscribed",
        "alice@example.com",
        "one-click",
    )
    again = web.client.post(link, content=b"List-Unsubscribe=One-Click", headers=ONE_CLICK)
    assert again.status_code == 200  # a client that retries is told the same
    assert len(trail(web.rt, "alice@example.com")) == 2  # and nothing more is written

    publish(web.rt, "Second advisory")
    sink.wait_until(lambda got: sum("Second" in m.message["Subject"] for m in got) >= 1)
    sink.settle()
    seconds = [m.rcpt_tos for m in sink.mails if "Second" in m.message["Subject"]]
    assert seconds == [("bernd@example.de",)]


def test_the_pages_button_unsubscribes_and_is_recorded_as_the_web(web: Web) -> None:
    subscribe_demo(web.rt, "alice@example.com")
    answer = web.client.post(f"/u/{web.token('alice@example.com')}", data={"confirm": "yes"})
    assert answer.status_code == 200
    assert trail(web.rt, "alice@example.com")[-1] == ("unsubscribed", "alice@example.com", "web")


def test_an_unsubscribe_cancels_the_contacts_bulletin_mails_not_yet_sent(
    rt_without_workers: Runtime, sink: Sink
) -> None:
    rt = rt_without_workers
    subscribe_demo(rt, "alice@example.com", "bernd@example.de")
    bulletin_id = new_bulletin(rt)
    bulletins.publish(rt, bulletin_id, ADMIN, hand_over=False)
    fan_out(rt, bulletin_id)  # written, and no worker to send them yet
    port = free_port()
    server = WebServer(rt, "127.0.0.1", port)
    server.start()
    try:
        token = tokens.sign(subscription_of(rt, "alice@example.com").id, rt.keys)
        answer = httpx.post(f"http://127.0.0.1:{port}/u/{token}", data={"confirm": "yes"})
    finally:
        server.stop()
    assert "the 1 not yet sent to you will not be sent" in answer.text
    with rt.sessions.begin() as session:
        mails = {
            d.recipient: (d.id, d.status, d.last_error) for d in session.scalars(select(Delivery))
        }
    alice_id, status, error = mails["alice@example.com"]
    assert status == "cancelled"
    assert error.startswith("cancelled: alice@example.com unsubscribed (web)")
    assert mails["bernd@example.de"][1] == "pending"
    transport = make_transport(f"smtp://127.0.0.1:{sink.port}?tls=none")
    ids = [alice_id, mails["bernd@example.de"][0]]
    assert deliver_bulk(ids, rt, transport, Renderer()) == ["sent"]  # bernd's only
    transport.close()
    assert [m.rcpt_tos for m in sink.mails] == [("bernd@example.de",)]
    assert bulletins.status(rt, bulletin_id)["cancelled"] == 1
    assert bulletins.status(rt, bulletin_id)["unsubscribed_since"] == 1


def altered(token: str) -> list[str]:
    number, key_id, mac = token.split(".")
    return [
        f"{int(number) + 1}.{key_id}.{mac}",  # turned into another subscriber's
        f"{number}.{key_id}.{mac[:-1]}{'0' if mac[-1] != '0' else '1'}",  # MAC changed
        f"{number}.k9.{mac}",  # a key that is not ours
        tokens.sign(int(number), {"k1": b"a retired key"}),  # signed by a key no longer listed
        tokens.sign(987654, {"k1": b"test-signing-key"}),  # signed, but names nobody
        "..%2Fetc%2Fpasswd",
        "x" * 300,
    ]


def test_a_forged_altered_or_retired_token_gets_the_same_400_and_changes_nothing(
    web: Web,
) -> None:
    subscribe_demo(web.rt, "alice@example.com", "bernd@example.de")
    token = web.token("alice@example.com")
    bodies = set()
    for bad in altered(token):
        shown = web.client.get(f"/u/{bad}")
        posted = web.client.post(
            f"/u/{bad}", content=b"List-Unsubscribe=One-Click", headers=ONE_CLICK
        )
        assert (shown.status_code, posted.status_code) == (400, 400), bad
        bodies |= {shown.text, posted.text}
    assert len(bodies) == 1  # nothing in the answer tells one bad token from another
    assert "This link is not valid" in bodies.pop()
    for address in ("alice@example.com", "bernd@example.de"):
        assert subscription_of(web.rt, address).state == "active"
        assert len(trail(web.rt, address)) == 1


def test_healthz_answers_200_while_the_database_answers_and_503_when_it_does_not(
    web: Web, tmp_path: Path
) -> None:
    assert web.client.get("/healthz").status_code == 200
    gone = create_engine(f"sqlite:///{tmp_path / 'no' / 'such' / 'dir' / 'x.db'}")
    broken = Runtime(
        settings=web.rt.settings,
        sessions=make_sessions(gone),
        outbox=Outbox(make_broker("")),
        keys=web.rt.keys,
        resolver=web.rt.resolver,
    )
    port = free_port()
    server = WebServer(broken, "127.0.0.1", port)
    server.start()
    try:
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 503
    finally:
        server.stop()


def test_gateway_web_serves_the_web_side_alone(
    make_gateway: Callable[..., Gateway], tmp_path: Path
) -> None:
    gateway = make_gateway()
    port = free_port()
    env = settings_env(gateway.settings) | {"GATEWAY_WEB_PORT": str(port)}
    process = Process.gateway(["web"], env, tmp_path / "web.log").start(wait_port=port)
    try:
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").text == "ok\n"
        assert httpx.get(f"http://127.0.0.1:{port}/u/1.k1.{'0' * 32}").status_code == 400
    finally:
        process.stop()


def chromium() -> tuple[Any, str]:
    """Playwright's sync API and Debian's Chromium (never a browser Playwright downloads)."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        missing("Chromium (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("Playwright (pip install playwright)")
    return sync_playwright, str(binary)


def test_in_a_browser_a_real_bulletins_link_shows_the_page_and_its_button_unsubscribes(
    web: Web, sink: Sink
) -> None:
    sync_playwright, binary = chromium()
    subscribe_demo(web.rt, "alice@example.com")
    publish(web.rt, "Browser advisory")
    (mail,) = sink.wait_to("alice@example.com")
    # the link a person clicks: the HTML part's "Unsubscribe"
    found = re.search(r'<a href="([^"]+)"[^>]*>Unsubscribe</a>', mail.html)
    assert found, mail.html
    link = found.group(1)
    assert link == unsubscribe_link(mail)
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=binary, headless=True)
        try:
            page = browser.new_page()
            page.goto(link)
            assert page.inner_text("#product") == "FortiGate 600E"
            assert page.inner_text("#kinds") == "patches, software upgrades, technical bulletins"
            page.screenshot(path=str(ARTIFACTS / "unsubscribe-page.png"), full_page=True)
            assert subscription_of(web.rt, "alice@example.com").state == "active"
            page.click("#unsubscribe")
            page.wait_for_selector("#done")
            assert "You are unsubscribed" in page.inner_text("#done")
            page.screenshot(path=str(ARTIFACTS / "unsubscribed-page.png"), full_page=True)
        finally:
            browser.close()
    print(f"screenshots in {ARTIFACTS}")
    assert subscription_of(web.rt, "alice@example.com").state == "unsubscribed"
    assert trail(web.rt, "alice@example.com")[-1] == ("unsubscribed", "alice@example.com", "web")


def test_the_web_side_serves_the_metrics_a_scrape_reads(web: Web) -> None:
    assert web.gateway.send(mail(message_id="<metrics-web@example.com>")).code == 250
    answer = web.client.get(f"{web.base}/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(answer.text)}
    received = {
        (s.labels.get("path"), s.labels.get("outcome")): s.value
        for s in families["gateway_mails_received"].samples
        if s.name == "gateway_mails_received_total"
    }
    assert received[("smtp", "open")] >= 1
