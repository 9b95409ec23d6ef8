"""How the gateway is doing: its metrics after a scripted run (each counter with what the test
sent), added up over processes; and its log lines as JSON objects."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from gateway.core.runtime import Runtime
from gateway.observe.exposition import render_metrics
from tests.support.harness import (
    OffsetClock,
    Process,
    eventually,
    mail,
    settings_env,
    settings_for,
    smtp_send,
)
from tests.support.services import free_port
from tests.support.sink import Sink
from tests.test_clock import at

START = datetime(2026, 11, 18, 9, 0, tzinfo=UTC)
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def scrape(rt: Runtime) -> Samples:
    body, content_type = render_metrics(rt)
    assert content_type.startswith("text/plain; version=")
    return parse(body.decode())


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_a_scrape_after_a_scripted_run_shows_what_was_sent(make_gateway: Any, sink: Sink) -> None:
    # Retries wait an hour: the one refused delivery below is tried exactly once
    gateway = make_gateway(clock=OffsetClock(START), send_backoff=3600.0)
    rt = gateway.runtime
    before = scrape(rt)

    def delta(name: str, **labels: str) -> float:
        return value(scrape(rt), name, **labels) - value(before, name, **labels)

    received = "gateway_mails_received_total"
    # Given: two new SRs, one of them sent twice, a stranger, and a mail for no one here
    assert gateway.send(mail(message_id="<m-1@example.com>")).code == 250
    assert gateway.send(mail(message_id="<m-1@example.com>")).code == 250  # the duplicate
    assert gateway.send(mail(subject="Second problem")).code == 250
    stranger = mail(sender="stranger@nowhere.example")
    assert gateway.send(stranger, mail_from="stranger@nowhere.example").code == 250  # held
    assert gateway.send(mail(), rcpt="nobody@securecall.example").code == 550
    sink.settle()
    # When: a day later the clock finds both SRs' targets missed and neither updated
    at(gateway, START + timedelta(hours=24, minutes=5))
    sink.settle()
    # And: a customer's acknowledgement that the relay refuses for now
    sink.refuse["bernd@example.de"] = "451 4.2.0 mailbox busy"
    late = mail(sender="bernd@example.de", subject="Zertifikat abgelaufen")
    assert gateway.send(late, mail_from="bernd@example.de").code == 250
    sink.settle()
    gateway.clock.advance(timedelta(minutes=10))  # type: ignore[attr-defined]

    # Then
    counts = {
        (received, "smtp", "open", ""): 3,
        (received, "smtp", "duplicate", ""): 1,
        (received, "smtp", "hold", ""): 1,
        (received, "smtp", "refused", "550"): 1,
    }
    for (name, path, outcome, code), expected in counts.items():
        assert delta(name, path=path, outcome=outcome, code=code) == expected, (outcome, code)
    assert delta("gateway_intake_seconds_count", path="smtp") == 5  # every mail taken
    assert delta("gateway_authentication_total", result="unchecked", source="none") == 5
    assert delta("gateway_deadlines_total", kind="initial_response", event="breached") == 2
    assert delta("gateway_deadlines_total", kind="update", event="breached") == 2
    assert delta("gateway_deadlines_total", kind="initial_response", event="warned") == 0
    assert delta("gateway_clock_lag_seconds_count") == 4
    # 2 + 1 acknowledgements, the stranger's notice, 4 alerts; 3 SOC copies; 1 refused for now
    eventually(lambda: delta("gateway_deliveries_total", queue="mail", outcome="sent") == 7)
    eventually(lambda: delta("gateway_deliveries_total", queue="soc", outcome="sent") == 3)
    eventually(lambda: delta("gateway_deliveries_total", queue="mail", outcome="retried") == 1)
    after = scrape(rt)
    assert 600 <= value(after, "gateway_queue_lag_seconds", queue="mail") < 700
    assert value(after, "gateway_queue_lag_seconds", queue="soc") == 0
    assert value(after, "gateway_queue_lag_seconds", queue="bulk") == 0
    assert value(after, "gateway_clock_overdue_seconds") == 0  # bernd's clocks are not due yet
    assert ("gateway_bounces_total", frozenset()) in after
    assert ("gateway_suspensions_total", frozenset()) in after


def _gateway_env(tmp_path: Path, sqlite_url: str, sink: Sink, **extra: str) -> dict[str, str]:
    env = settings_env(settings_for(tmp_path / "var", sqlite_url, sink_port=sink.port))
    return env | extra


def _demo(env: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "cli", "demo"], env=env, capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr


def test_the_metrics_of_two_listeners_are_added_up(
    tmp_path: Path, sqlite_url: str, sink: Sink
) -> None:
    env = _gateway_env(
        tmp_path, sqlite_url, sink, PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics")
    )
    (tmp_path / "metrics").mkdir()
    _demo(env)
    ports = [free_port(), free_port()]
    listeners = [
        Process.gateway(["smtp"], env | {"GATEWAY_SMTP_PORT": str(port)}, tmp_path / f"{n}.log")
        for n, port in enumerate(ports)
    ]
    try:
        for listener, port in zip(listeners, ports, strict=True):
            listener.start(wait_port=port)
        for n, port in enumerate(ports):
            assert smtp_send(port, mail(subject=f"problem {n}")).code == 250
        assert smtp_send(ports[1], mail(), rcpt="nobody@securecall.example").code == 550
        sink.wait_to("alice@example.com", 2)
    finally:
        for listener in listeners:
            listener.stop()
    shown = subprocess.run(
        [sys.executable, "-m", "cli", "metrics"],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    samples = parse(shown.stdout.decode())
    total = "gateway_mails_received_total"
    assert value(samples, total, path="smtp", outcome="open", code="") == 2
    assert value(samples, total, path="smtp", outcome="refused", code="550") == 1
    assert value(samples, "gateway_intake_seconds_count", path="smtp") == 2
    assert value(samples, "gateway_queue_lag_seconds", queue="mail") == 0


def test_json_logs_are_one_object_per_line_naming_the_mail_and_the_delivery(
    tmp_path: Path, sqlite_url: str, sink: Sink
) -> None:
    env = _gateway_env(tmp_path, sqlite_url, sink, GATEWAY_LOG_FORMAT="json")
    port = int(env["GATEWAY_SMTP_PORT"])
    log = tmp_path / "run.log"
    gateway = Process.gateway(["run", "--demo"], env, log).start(wait_port=port)
    try:
        assert smtp_send(port, mail(message_id="<logged@example.com>")).code == 250
        assert smtp_send(port, mail(subject="No Message-ID", message_id=None)).code == 250
        sink.wait_to("alice@example.com", 2)
        eventually(lambda: len(_lines(log, "delivery")) >= 4)  # 2 acknowledgements, 2 copies
    finally:
        gateway.stop()
    objects = [json.loads(line) for line in log.read_text().splitlines()]  # every line
    assert all({"time", "level", "logger", "message"} <= set(o) for o in objects)
    intake = {o["message_id"]: o for o in objects if o.get("event") == "intake"}
    (stored,) = (key for key in intake if key.startswith("stored:"))
    assert set(intake) == {"<logged@example.com>", stored}
    for entry in intake.values():
        assert entry["outcome"] == "open"
        assert entry["sr_id"].startswith("SR-")
        assert isinstance(entry["ms"], int | float)
        assert entry["ms"] >= 0
    assert "None" not in log.read_text()
    deliveries = _lines(log, "delivery")
    assert {d["result"] for d in deliveries} == {"sent"}
    assert {(d["queue"], d["recipient_domain"]) for d in deliveries} == {
        ("mail", "example.com"),
        ("soc", "securecall.example"),
    }
    assert all(isinstance(d["delivery_id"], int) for d in deliveries)


def _lines(log: Path, event: str) -> list[dict[str, Any]]:
    found = []
    for line in log.read_text().splitlines():
        if f'"event": "{event}"' in line:
            found.append(json.loads(line))
    return found
