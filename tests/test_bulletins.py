"""§3.8, R4.1, R4.3: bulletins written in Markdown, sent once to each subscriber, each mail
personal and carrying the list headers of RFC 2369, RFC 2919 and RFC 8058."""

from __future__ import annotations

import json
from collections.abc import Iterator
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.exc import OperationalError
from typer.testing import CliRunner

from cli.app import app
from gateway.core.ids import fixed_message_id, is_our_message_id
from gateway.core.runtime import Runtime
from gateway.outbound.sending import Claimed
from gateway.storage.models import BulletinRecipient, Delivery
from gateway.sus import bulletins, tokens, verp
from gateway.sus.fanout import fan_out
from tests.support.bulletins import (
    ADMIN,
    PRODUCT,
    new_bulletin,
    quiet_runtime,
    subscribe_demo,
    subscribe_many,
)
from tests.support.harness import Gateway, count, eventually, settings_for
from tests.support.sink import Sink
from workers.composer import compose
from workers.markdown_html import to_html
from workers.render import Rendered, Renderer
from workers.transport import PermanentFailure


def test_markdown_becomes_html_without_any_markup_script_or_foreign_link_of_its_own() -> None:
    html = to_html(
        "# Title <b>bold</b>\n\n<script>alert(1)</script>\n\n"
        "[ok](https://vendor.example/a) [bad](javascript:alert(1)) [file](file:///etc/passwd) "
        '![pixel](https://tracker.example/p.png) <img src=x onerror="alert(1)">'
    )
    assert "<h1>Title &lt;b&gt;bold&lt;/b&gt;</h1>" in html
    assert "<script" not in html
    assert "&lt;script&gt;" in html
    assert '<a href="https://vendor.example/a">ok</a>' in html
    assert "javascript:" not in html.replace("[bad](javascript:alert(1))", "")
    assert 'href="file:' not in html
    assert "<img" not in html


@pytest.fixture(params=["sqlite_url", "postgres_url"])
def rt(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Runtime]:
    """A runtime without workers, on SQLite and on PostgreSQL."""
    with quiet_runtime(tmp_path, request.getfixturevalue(request.param)) as runtime:
        yield runtime


def test_the_mail_states_product_kind_severity_advisory_and_the_disclaimer() -> None:
    context = {
        "bulletin_id": 1,
        "product": PRODUCT,
        "kind": "upgrade",
        "severity": "high",
        "title": "FortiOS 7.6 <released>",
        "body": "Upgrade **now**.\n\n<iframe src=x></iframe>",
        "url": "https://fortiguard.example/a?b=1&c=2",
        "contact_name": "Alice Archer",
        "unsubscribe_url": "http://127.0.0.1:8025/u/7.k1.abc",
        "sus_address": "sus@securecall.example",
    }
    rendered = Renderer().render("sus_bulletin", "customer", "en", context)
    subject = "[SUS] FortiGate 600E software upgrade (high): FortiOS 7.6 <released>"
    assert rendered.subject == subject
    assert rendered.html is not None
    for part in (rendered.text, rendered.html):
        assert "FortiGate 600E" in part
        assert "Software upgrade" in part
        assert "High" in part
        assert "https://fortiguard.example/a?b=1" in part
        assert "not SecureCall's" in part  # §3.8: the manufacturers' information
        assert "not liable for its accuracy" in part
        assert "http://127.0.0.1:8025/u/7.k1.abc" in part
    assert "Upgrade **now**." in rendered.text  # the text part is the Markdown as written
    assert "<strong>now</strong>" in rendered.html
    assert "&lt;iframe" in rendered.html
    assert "<iframe" not in rendered.html
    assert "FortiOS 7.6 &lt;released&gt;" in rendered.html
    assert "<style" not in rendered.html  # inlined (css-inline)
    assert 'style="' in rendered.html.split("<h1", 1)[1].split(">", 1)[0]


def test_a_message_id_fixed_by_its_seed_is_still_signed() -> None:
    keys = {"k2": b"new", "k1": b"old"}
    domain = "securecall.example"
    first = fixed_message_id("bulletin-3", "bulletin:3:contact:9", domain, keys)
    assert first == fixed_message_id("bulletin-3", "bulletin:3:contact:9", domain, keys)
    assert first != fixed_message_id("bulletin-3", "bulletin:3:contact:10", domain, keys)
    assert is_our_message_id(first, keys)
    assert not is_our_message_id(first.replace("bulletin-3", "bulletin-4"), keys)
    assert not is_our_message_id(first, {"k1": b"old"})


def claimed(**fields: Any) -> Claimed:
    values: dict[str, Any] = {
        "id": 1,
        "template": "sus_bulletin",
        "audience": "customer",
        "language": "en",
        "recipient": "alice@example.com",
        "context": {},
        "message_id": "<m@securecall.example>",
        "in_reply_to": None,
        "references": "",
        "auto_submitted": "auto-generated",
        "attempts": 0,
        "headers": {"List-Id": "<x.sus.securecall.example>"},
        "mail_from": None,
    }
    values.update(fields)
    return Claimed(**values)


@pytest.mark.parametrize(
    "headers",
    [
        {"List-Id": "<x>\r\nBcc: victim@example.org"},
        {"List-Id": "<x>\nX-Evil: 1"},
        {"From": "ceo@securecall.example"},
        {"Message-ID": "<other@securecall.example>"},
        {"Bad Name": "x"},
        {"X-Colon:": "x"},
        {"List-Id": "<caf\u00e9.sus.securecall.example>"},
    ],
)
def test_a_deliverys_own_header_fields_cannot_add_or_replace_a_field(
    tmp_path: Path, headers: dict[str, str]
) -> None:
    settings = settings_for(tmp_path, "sqlite://", sink_port=1)
    rendered = Rendered("Subject", "text\n", None)
    with pytest.raises(PermanentFailure):
        compose(claimed(headers=headers), rendered, settings)


def test_each_bulletin_mail_goes_to_its_subscriber_alone_with_the_list_headers(
    gateway: Gateway, sink: Sink
) -> None:
    rt = gateway.runtime
    subscribe_demo(rt, "alice@example.com", "bernd@example.de")
    subscribe_demo(rt, "chloe@example.fr", kinds="upgrade")  # not this bulletin's kind
    bulletin_id = new_bulletin(rt)
    assert bulletins.publish(rt, bulletin_id, ADMIN, hand_over=True) == "publishing"
    mails = sink.wait_until(lambda got: len(got) >= 2)
    sink.settle()
    assert sorted(r for m in sink.mails for r in m.rcpt_tos) == [
        "alice@example.com",
        "bernd@example.de",
    ]
    domain = rt.settings.domain
    with rt.sessions.begin() as session:
        by_delivery = {d.id: d for d in session.scalars(select(Delivery))}
    for received in mails:
        message = received.message
        (address,) = received.rcpt_tos
        assert message["To"] == address
        assert message["Precedence"] == "bulk"
        assert message["Auto-Submitted"] == "auto-generated"
        assert message["List-Id"] == "<fortigate-600e.sus.securecall.example>"
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        https, mailto = (part.strip(" <>") for part in message["List-Unsubscribe"].split(","))
        token = https.rsplit("/u/", 1)[1]
        assert https == f"{rt.settings.public_url}/u/{token}"
        assert unquote(mailto) == f"mailto:sus@{domain}?subject=unsubscribe {token}"
        assert tokens.verify(token, rt.keys) is not None
        assert is_our_message_id(message["Message-ID"], dict(rt.keys))
        delivery = by_delivery[verp.delivery_of(received.mail_from, rt.keys, domain) or 0]
        assert delivery.recipient == address  # the VERP return path names this mail's Delivery
        assert delivery.message_id == message["Message-ID"].strip()  # folded: it is long
        assert "CVE-2026-1234" in received.text
        assert "<strong>CVE-2026-1234</strong>" in received.html
        assert "&lt;script&gt;" in received.html
    eventually(lambda: bulletins.status(rt, bulletin_id)["state"] == "published")
    figures = bulletins.status(rt, bulletin_id)
    assert (figures["audience"], figures["written"], figures["sent"]) == (2, 2, 2)


def test_a_fan_out_run_again_writes_nobody_twice_and_keeps_each_message_id(rt: Runtime) -> None:
    subscribe_many(rt, 1200)  # three batches of 500
    bulletin_id = new_bulletin(rt)
    bulletins.publish(rt, bulletin_id, ADMIN, hand_over=False)
    assert fan_out(rt, bulletin_id) == 1200
    with rt.sessions.begin() as session:
        ids = sorted(session.scalars(select(Delivery.message_id)))
        session.get_one(
            type(bulletins.require(session, bulletin_id)), bulletin_id
        ).state = "publishing"  # as if the publisher had been killed before the last batch
    assert fan_out(rt, bulletin_id) == 0
    with rt.sessions.begin() as session:
        assert sorted(session.scalars(select(Delivery.message_id))) == ids
    assert bulletins.status(rt, bulletin_id)["state"] == "published"


def test_a_batch_that_fails_half_way_is_undone_whole_and_the_next_run_completes_it(
    rt: Runtime,
) -> None:
    addresses = subscribe_many(rt, 1300)
    bulletin_id = new_bulletin(rt)
    bulletins.publish(rt, bulletin_id, ADMIN, hand_over=False)
    engine = rt.sessions.kw["bind"]
    seen: list[str] = []

    def second_batch_fails(conn: Any, cursor: Any, sql: str, *args: Any) -> None:
        if sql.startswith("INSERT INTO bulletin_recipients"):
            seen.append(sql)
            if len(seen) == 2:  # after the second batch's Deliveries, before its recipients
                raise OperationalError(sql, {}, Exception("disk I/O error"))

    event.listen(engine, "before_cursor_execute", second_batch_fails)
    try:
        with pytest.raises(OperationalError):
            fan_out(rt, bulletin_id)
    finally:
        event.remove(engine, "before_cursor_execute", second_batch_fails)
    batch = rt.settings.sus_fanout_batch
    assert count_rows(rt) == (batch, batch)  # the first batch, whole; nothing of the second
    assert fan_out(rt, bulletin_id) == 1300 - batch  # who was left
    assert count_rows(rt) == (1300, 1300)
    with rt.sessions.begin() as session:
        recipients = set(session.scalars(select(Delivery.recipient)))
    assert recipients == set(addresses)


def count_rows(rt: Runtime) -> tuple[int, int]:
    with rt.sessions.begin() as session:
        return (
            session.scalar(select(func.count()).select_from(Delivery)) or 0,
            session.scalar(select(func.count()).select_from(BulletinRecipient)) or 0,
        )


def test_a_refused_bulletin_mail_is_failed_on_5xx_and_tried_again_on_4xx(
    gateway: Gateway, sink: Sink
) -> None:
    rt = gateway.runtime
    subscribe_demo(rt, "alice@example.com", "bernd@example.de", "chloe@example.fr")
    sink.refuse["bernd@example.de"] = "550 5.1.1 no such mailbox"
    sink.refuse["chloe@example.fr"] = "451 4.3.0 try later"
    bulletin_id = new_bulletin(rt)
    bulletins.publish(rt, bulletin_id, ADMIN, hand_over=True)
    sink.wait_to("alice@example.com")
    eventually(lambda: count(gateway, Delivery, Delivery.status == "failed") == 1)
    deferred = (Delivery.attempts >= 1, Delivery.status == "pending")
    eventually(lambda: count(gateway, Delivery, *deferred) == 1)
    figures = bulletins.status(rt, bulletin_id)
    shown = (figures["sent"], figures["failed"], figures["bounced"], figures["waiting"])
    assert shown == (1, 1, 1, 1)
    del sink.refuse["chloe@example.fr"]
    with rt.sessions.begin() as session:  # its backoff passes: the sweep enqueues it
        session.execute(Delivery.__table__.update().values(next_attempt_at=rt.now()))
    sink.wait_to("chloe@example.fr")
    assert len(sink.to("bernd@example.de")) == 0


@pytest.fixture
def bulletin_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("GATEWAY_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("GATEWAY_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("GATEWAY_SECRET_KEY", "cli-key")
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, list(args), catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result.output

    run("demo")
    return run


def test_bulletins_are_written_previewed_listed_and_counted_from_the_command_line(
    bulletin_cli: Any, tmp_path: Path
) -> None:
    body = tmp_path / "advisory.md"
    body.write_text("FortiOS 7.4.5 is out.\n\n- fixes **CVE-2026-1234**\n", "utf-8")

    def create(*options: str, product: str = PRODUCT, kind: str = "patch", code: int = 0) -> str:
        args = ["--product", product, "--kind", kind, "--body", str(body), *options]
        return str(bulletin_cli("bulletins", "create", *args, code=code))

    created = create("--title", "FortiOS 7.4.5", "--severity", "high", "--json")
    bulletin_id = json.loads(created)["id"]
    assert create("--title", "Second").strip() == str(bulletin_id + 1)
    assert "gossip" in create("--title", "x", kind="gossip", code=2)
    assert "http:// or https://" in create("--title", "x", "--url", "javascript:alert(1)", code=2)
    assert "no product 'Nokia 3310'" in create("--title", "x", product="Nokia 3310", code=2)
    assert "one line" in create("--title", "two\nlines", code=2)

    shown = bulletin_cli("bulletins", "preview", str(bulletin_id))
    assert shown.startswith("Subject: [SUS] FortiGate 600E patch (high): FortiOS 7.4.5")
    assert "<strong>CVE-2026-1234</strong>" in shown
    eml = tmp_path / "preview.eml"
    bulletin_cli("bulletins", "preview", str(bulletin_id), "--out", str(eml))
    message = message_from_bytes(eml.read_bytes(), policy=policy.default)
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["Return-Path"].startswith("<bounces+0.")

    listed = json.loads(bulletin_cli("bulletins", "list", "--json"))
    assert [(b["id"], b["state"], b["severity"]) for b in listed] == [
        (bulletin_id + 1, "draft", "medium"),
        (bulletin_id, "draft", "high"),
    ]
    figures = json.loads(bulletin_cli("bulletins", "status", str(bulletin_id), "--json"))
    assert (figures["state"], figures["audience"], figures["written"]) == ("draft", 0, 0)
    assert "no bulletin 99" in bulletin_cli("bulletins", "status", "99", code=2)
