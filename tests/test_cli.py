"""The `gateway` command: directory management, reading what is stored, clear errors."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli.app import app
from tests.support.harness import Gateway, mail


@pytest.fixture
def gateway_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Runs `gateway …` in this process against a fresh SQLite database."""
    monkeypatch.setenv("GATEWAY_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("GATEWAY_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
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
    assert "role must be one of" in gateway_cli(
        "staff", "add", "x@y.example", "--role", "boss", code=2
    )


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
    gateway_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATEWAY_SMTP_PORT", "twenty-five")
    out = gateway_cli("config", code=2)
    assert "invalid configuration: GATEWAY_SMTP_PORT" in out
    monkeypatch.setenv("GATEWAY_SMTP_PORT", "2525")
    monkeypatch.setenv("GATEWAY_BROKER_URL", "kafka://broker")
    assert "GATEWAY_BROKER_URL must be empty" in gateway_cli("smtp", code=2)
