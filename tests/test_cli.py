"""The `gateway` command: directory management, reading what is stored, clear errors."""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli import choices
from cli.app import app
from gateway import directory
from gateway.requests import commands
from tests.support.harness import (
    Gateway,
    Process,
    mail,
    settings_env,
    settings_for,
    smtp_send,
)
from tests.support.services import free_port
from tests.support.sink import Sink


@pytest.fixture
def gateway_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Runs `gateway …` in this process against a fresh SQLite database."""
    monkeypatch.setenv("GATEWAY_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("GATEWAY_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("GATEWAY_CONFIG", "/nonexistent/gateway.toml")  # put back after --config
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, list(args), catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result.output

    return run


def test_contacts_import_creates_the_customer_and_reports_bad_rows(
    gateway_cli: Any, tmp_path: Path
) -> None:
    csv = tmp_path / "contacts.csv"
    csv.write_text(
        "email,name,language,role\n"
        "ops@acme.example,Olga Ops,de,technical_contact\n"
        "AM@Acme.example,Andy Manager,en,account manager\n"
        "not-an-address,Nobody,en,technical_contact\n"
        "tam@acme.example,Tina Tam,it,tam\n",
        encoding="utf-8",
    )
    out = gateway_cli("contacts", "import", str(csv), "--customer", "ACME AG", "--json", code=1)
    report = json.loads(out)
    assert report["created"] == 2
    assert report["errors"] == [
        "line 4: not a mail address: 'not-an-address'",
        "line 5: language must be one of en, de, fr, not 'it'",
    ]
    listed = json.loads(gateway_cli("contacts", "list", "--customer", "ACME AG", "--json"))
    assert [(c["email"], c["role"], c["language"]) for c in listed] == [
        ("am@acme.example", "account_manager", "en"),
        ("ops@acme.example", "technical_contact", "de"),
    ]
    customers = json.loads(gateway_cli("customers", "list", "--json"))
    assert customers == [
        {
            "name": "ACME AG",
            "timezone": "Europe/Berlin",
            "country": "DE",
            "subdivision": None,
            "contacts": 2,
        }
    ]
    # Importing again updates instead of duplicating
    csv.write_text("email,name,language,role\nops@acme.example,Olga O.,fr,technical_contact\n")
    assert (
        json.loads(gateway_cli("contacts", "import", str(csv), "--customer", "ACME AG", "--json"))[
            "updated"
        ]
        == 1
    )


def test_contacts_add_remove_and_a_contact_cannot_belong_to_two_customers(gateway_cli: Any) -> None:
    gateway_cli("customers", "add", "ACME AG", "--timezone", "Europe/Lisbon", "--country", "PT")
    gateway_cli("customers", "add", "Globex", "--timezone", "America/New_York", "--country", "US")
    gateway_cli("contacts", "add", "ops@acme.example", "--customer", "ACME AG", "--name", "Olga")
    out = gateway_cli("contacts", "add", "ops@acme.example", "--customer", "Globex", code=2)
    assert "ops@acme.example is a contact of 'ACME AG'" in out
    gateway_cli("contacts", "remove", "ops@acme.example")
    assert json.loads(gateway_cli("contacts", "list", "--json")) == []
    # A leaver may come back, at another customer
    gateway_cli("contacts", "add", "ops@acme.example", "--customer", "Globex")
    assert json.loads(gateway_cli("contacts", "list", "--json"))[0]["customer"] == "Globex"


def test_customers_add_rejects_an_unknown_time_zone(gateway_cli: Any) -> None:
    out = gateway_cli("customers", "add", "X", "--timezone", "Mars/Olympus", code=2)
    assert "unknown time zone 'Mars/Olympus'" in out


def test_products_and_staff_are_managed_and_listed(gateway_cli: Any) -> None:
    gateway_cli("customers", "add", "ACME AG")
    gateway_cli(
        "products",
        "add",
        "--customer",
        "ACME AG",
        "--product",
        "FortiGate 600E",
        "--serial",
        "FG600E-1",
        "--valid-from",
        "2026-01-01",
        "--valid-to",
        "2026-12-31",
        "--not-in-production",
        "--end-of-support",
        "2027-06-30",
    )
    (product,) = json.loads(gateway_cli("products", "list", "--customer", "ACME AG", "--json"))
    assert product == {
        "id": 1,
        "customer": "ACME AG",
        "product": "FortiGate 600E",
        "serial": "FG600E-1",
        "valid_from": "2026-01-01",
        "valid_to": "2026-12-31",
        "in_production": False,
        "end_of_support": "2027-06-30",
    }
    out = gateway_cli(
        "products",
        "add",
        "--customer",
        "ACME AG",
        "--product",
        "X",
        "--valid-from",
        "2026-13-01",
        "--valid-to",
        "2026-12-31",
        code=2,
    )
    assert "not a date" in out
    gateway_cli("products", "remove", "1")
    assert json.loads(gateway_cli("products", "list", "--json")) == []
    gateway_cli("staff", "add", "lead@securecall.example", "--name", "Lee", "--role", "team_leader")
    assert json.loads(gateway_cli("staff", "list", "--json")) == [
        {"email": "lead@securecall.example", "name": "Lee", "role": "team_leader"}
    ]
    refused = gateway_cli("staff", "add", "x@y.example", "--role", "boss", code=2)
    assert "'boss' is not one of 'analyst', 'team_leader', 'duty_manager'" in _plain(refused)


def test_requests_list_and_show_give_the_stored_sr_as_json(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch, sink: Any
) -> None:
    monkeypatch.setenv("GATEWAY_DATABASE_URL", gateway.settings.database)
    monkeypatch.setenv("GATEWAY_VAR_DIR", str(gateway.settings.var_dir))
    attachment = (
        b"--b\r\nContent-Type: text/plain\r\n\r\nSee the log.\r\n--b\r\n"
        b"Content-Type: application/octet-stream\r\nContent-Disposition: attachment; "
        b'filename="fw.log"\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8gbG9n\r\n--b--\r\n'
    )
    data = (
        mail(message_id="<cli@example.com>")
        .replace(
            b"Content-Type: text/plain; charset=utf-8",
            b'Content-Type: multipart/mixed; boundary="b"',
        )
        .split(b"\r\n\r\n", 1)[0]
        + b"\r\n\r\n"
        + attachment
    )
    assert gateway.send(data).code == 250
    sink.wait_for(1)
    runner = CliRunner()
    listed = json.loads(runner.invoke(app, ["requests", "list", "--json"]).output)
    assert len(listed) == 1
    sr_id = listed[0]["id"]
    shown = json.loads(runner.invoke(app, ["requests", "show", sr_id.lower(), "--json"]).output)
    (message,) = shown["messages"]
    assert message["from"] == "alice@example.com"
    assert message["text"] == "See the log."
    assert message["attachments"] == [
        {
            "filename": "fw.log",
            "content_type": "application/octet-stream",
            "size": 9,
            "sha256": hashlib.sha256(b"hello log").hexdigest(),
        }
    ]
    assert shown["deliveries"][0]["template"] == "request_opened"
    missing = runner.invoke(app, ["requests", "show", "SR-0000-0000"])
    assert missing.exit_code == 2
    assert "no Service Request SR-0000-0000" in missing.output


def test_review_list_shows_mail_from_unregistered_senders(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATEWAY_DATABASE_URL", gateway.settings.database)
    monkeypatch.setenv("GATEWAY_VAR_DIR", str(gateway.settings.var_dir))
    gateway.send(
        mail(sender="who@unknown.example", subject="Let me in"), mail_from="who@unknown.example"
    )
    held = json.loads(CliRunner().invoke(app, ["review", "list", "--json"]).output)
    assert [(h["from"], h["subject"], h["reason"]) for h in held] == [
        ("who@unknown.example", "Let me in", "an unregistered sender")
    ]


def test_the_installed_gateway_command_answers() -> None:
    command = shutil.which("gateway", path=str(Path(sys.executable).parent))
    assert command is not None, "the console script is installed with the package"
    result = subprocess.run(
        [command, "--help"], capture_output=True, text=True, timeout=60, check=True
    )
    for part in ("run", "smtp", "imap", "contacts", "requests", "review"):
        assert part in result.stdout


def test_a_bad_setting_is_reported_by_name(
    gateway_cli: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GATEWAY_SMTP_PORT", "twenty-five")
    out = gateway_cli("config", code=2)
    assert out == (
        "error: invalid configuration: GATEWAY_SMTP_PORT (environment variable): "
        "should be a valid integer, unable to parse string as an integer, not 'twenty-five'\n"
    )
    monkeypatch.setenv("GATEWAY_SMTP_PORT", str(free_port()))
    monkeypatch.setenv("GATEWAY_BROKER_URL", "kafka://broker")
    out = gateway_cli("smtp", code=2)
    assert out == (
        "error: invalid configuration: GATEWAY_BROKER_URL (environment variable): "
        "unknown scheme 'kafka': use amqp, amqps, redis, rediss, unix\n"
    )
    assert not (tmp_path / "cli.db").exists()  # nothing was opened or migrated


def _plain(output: str) -> str:
    """typer's boxed usage error as one line of text (the box wraps it at the terminal's width)."""
    return " ".join(output.replace("│", " ").split())


@pytest.mark.parametrize(
    "args",
    [
        ("requests", "list", "--state", "bogus"),
        ("review", "list", "--status", "bogus"),
        ("deliveries", "list", "--status", "bogus"),
        ("contacts", "add", "x@acme.example", "--customer", "ACME AG", "--role", "bogus"),
        ("contacts", "add", "x@acme.example", "--customer", "ACME AG", "--language", "bogus"),
        ("domains", "set", "acme.example", "--policy", "bogus"),
    ],
)
def test_an_unknown_filter_or_field_value_is_refused(
    gateway_cli: Any, tmp_path: Path, args: tuple[str, ...]
) -> None:
    out = _plain(gateway_cli(*args, code=2))
    assert f"Invalid value for '{args[-2]}'" in out
    assert "'bogus' is not one of" in out
    assert not (tmp_path / "cli.db").exists()  # refused before the database was opened


def test_every_value_of_each_filter_is_accepted(gateway_cli: Any) -> None:
    for state in ("open", "waiting", "resolved", "closed", "OPEN"):
        assert gateway_cli("requests", "list", "--state", state) == "(none)\n"
    for status in ("review", "bounce", "quarantined", "dismissed"):
        assert json.loads(gateway_cli("review", "list", "--status", status, "--json")) == []
    for status in ("pending", "sending", "sent", "failed"):
        assert json.loads(gateway_cli("deliveries", "list", "--status", status, "--json")) == []


def test_the_choices_of_the_command_line_are_the_gateways_own() -> None:
    assert tuple(choices.State) == commands.STATES
    assert tuple(choices.Language) == directory.LANGUAGES
    assert tuple(choices.ContactRole) == directory.CONTACT_ROLES
    assert tuple(choices.StaffRole) == directory.STAFF_ROLES
    assert tuple(choices.Policy) == directory.POLICY_NAMES


def test_customers_add_checks_the_zone_and_country_before_opening_the_database(
    gateway_cli: Any, tmp_path: Path
) -> None:
    assert gateway_cli("customers", "add", "X", "--timezone", "Europe", code=2) == (
        "error: unknown time zone 'Europe'\n"
    )
    assert gateway_cli("customers", "add", "X", "--country", "Germany", code=2) == (
        "error: not a two-letter country code: 'Germany'\n"
    )
    assert not (tmp_path / "cli.db").exists()
    gateway_cli("customers", "add", "X", "--timezone", "America/Sao_Paulo", "--country", "br")
    (customer,) = json.loads(gateway_cli("customers", "list", "--json"))
    assert (customer["timezone"], customer["country"]) == ("America/Sao_Paulo", "BR")


def test_long_cells_wrap_instead_of_being_cut(
    gateway_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = (
        "[bold]Vereinigte[/bold] Stahl- und Walzwerke Niederrhein Kommanditgesellschaft auf Aktien"
    )
    gateway_cli("customers", "add", name)
    monkeypatch.setenv("COLUMNS", "80")
    out = gateway_cli("customers", "list")
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "TIMEZONE", "COUNTRY", "CONTACTS"]
    assert len(lines) > 2  # the name took more than one line …
    assert all(len(line) <= 80 for line in lines)
    words = " ".join(line.split("Europe/Berlin")[0] for line in lines[1:]).split()
    assert " ".join(words) == name  # … and every word of it is there, markup shown as written


def test_a_busy_smtp_port_is_reported_before_anything_is_loaded(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        database = tmp_path / "gateway.db"
        env = settings_env(
            settings_for(tmp_path / "var", f"sqlite:///{database}", sink_port=free_port())
        )
        env["GATEWAY_SMTP_PORT"] = str(port)
        for command in (["run", "--demo"], ["smtp"]):
            result = subprocess.run(
                [sys.executable, "-m", "cli", *command],
                check=False,
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert result.returncode == 2
            assert result.stdout == ""
            assert (
                result.stderr
                == f"error: cannot listen on 127.0.0.1:{port}: address already in use\n"
            )
    assert not database.exists()  # no migration ran, no demo customer was loaded


def test_a_clean_stop_leaves_a_database_file_that_is_complete_alone(
    tmp_path: Path, sqlite_url: str, sink: Sink
) -> None:
    settings = settings_for(tmp_path / "var", sqlite_url, sink_port=sink.port)
    database = Path(sqlite_url.removeprefix("sqlite:///"))
    gateway = Process.gateway(["run", "--demo"], settings_env(settings), tmp_path / "run.log")
    gateway.start(wait_port=settings.smtp_port)
    try:
        reply = smtp_send(settings.smtp_port, mail(message_id="<wal-1@example.com>"))
        assert reply.code == 250
        sink.wait_to("alice@example.com")
    finally:
        gateway.stop()
    assert gateway.proc is not None
    assert gateway.proc.returncode == 0, (tmp_path / "run.log").read_text()
    wal = Path(f"{database}-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    copy = tmp_path / "copy" / "gateway.db"
    copy.parent.mkdir()
    shutil.copyfile(database, copy)  # the file alone: no -wal, no -shm beside it
    with closing(sqlite3.connect(copy)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        stored = conn.execute("SELECT message_id FROM raw_mails").fetchall()
        assert stored == [("<wal-1@example.com>",)]
        assert conn.execute("SELECT count(*) FROM service_requests").fetchone() == (1,)
        sent = conn.execute("SELECT count(*) FROM deliveries WHERE status = 'sent'").fetchone()
        assert sent[0] >= 1


def test_after_each_command_the_database_file_alone_is_complete(
    gateway_cli: Any, tmp_path: Path
) -> None:
    gateway_cli("customers", "add", "ACME AG", "--timezone", "Europe/Lisbon", "--country", "PT")
    wal = tmp_path / "cli.db-wal"
    assert not wal.exists() or wal.stat().st_size == 0
    copy = tmp_path / "copy.db"
    shutil.copyfile(tmp_path / "cli.db", copy)
    with closing(sqlite3.connect(copy)) as conn:
        assert conn.execute("SELECT name, timezone FROM customers").fetchall() == [
            ("ACME AG", "Europe/Lisbon")
        ]
