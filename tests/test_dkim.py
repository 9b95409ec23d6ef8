"""R6.7: every mail the gateway sends is DKIM-signed with its own domain, Ed25519 or RSA, and
verifies against the key `gateway dkim generate` made, published in the test's DNS server.

Each kind of mail is provoked by a step of `STEPS`, through the product's own paths (mail in at
the listener, commands by mail, the clock, the functions the CLI calls); a new template is covered
by adding the step that makes it send one (the last test fails until every template has its step).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import dkim
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from cli.app import app
from gateway.intake.dns import Resolver
from gateway.storage.models import Delivery
from gateway.sus import bulletins
from tests.support import securehands as hands
from tests.support.bulletins import ADMIN as PUBLISHER
from tests.support.bulletins import new_bulletin
from tests.support.harness import Gateway, OffsetClock, eventually, mail
from tests.support.sink import Received, Sink
from tests.support.sus import state_of
from tests.test_clock import at, open_sr, soc_command
from tests.test_reviews import with_tam
from tests.test_securehands_sessions import answer, queries, statements
from tests.test_sus_bounces import returned
from tests.test_sus_requests import ADMIN, BERND, SUS, admin_answer
from workers.composer import as_bytes
from workers.signing import Signer

START = datetime(2026, 11, 18, 9, 0, tzinfo=UTC)  # a Wednesday; the daily mails follow at 07:00
TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "mail"
# What every signature must cover (h=); List-* are added when a mail has them (bulletins).
COVERED = {"from", "to", "subject", "date", "message-id", "in-reply-to", "references"}
LISTED = {"list-id", "list-unsubscribe", "list-unsubscribe-post"}  # RFC 2369, 2919, 8058


@dataclass
class Run:
    gateway: Gateway
    sink: Sink
    srs: dict[str, str]


@dataclass(frozen=True)
class Step:
    """Something that makes the gateway send the mails of `templates` (file stems)."""

    templates: tuple[str, ...]
    run: Callable[[Run], None]


def _open(run: Run) -> None:
    run.srs["answered"] = open_sr(run.gateway, run.sink, subject="VPN tunnel down")
    run.srs["waiting"] = open_sr(run.gateway, run.sink, subject="Log retention question")


def _priority1(run: Run) -> None:
    urgent = mail(subject="PRIORITY 1: cluster down", message_id="<dkim-p1@example.com>")
    assert run.gateway.send(urgent).code == 250


def _stranger(run: Run) -> None:
    data = mail(sender="stranger@nowhere.example", subject="Hello")
    assert run.gateway.send(data, mail_from="stranger@nowhere.example").code == 250


def _reply(run: Run) -> None:
    data = mail(subject=f"Re: [{run.srs['answered']}] VPN tunnel down", body="Still down.")
    assert run.gateway.send(data).code == 250


def _answer(run: Run) -> None:
    soc_command(run.gateway, run.srs["answered"], "Please restart the tunnel from the GUI.")


def _command(run: Run) -> None:
    soc_command(run.gateway, run.srs["answered"], "#priority 2\nRaised.")  # and the TAM hears


def _escalate(run: Run) -> None:
    data = mail(subject=f"Re: [{run.srs['answered']}] please escalate", body="Nothing works.")
    assert run.gateway.send(data).code == 250


def _next_morning(run: Run) -> None:
    # 80 % of the waiting SR's 24 h target, the 07:00 review and the 08:00 digest have passed
    at(run.gateway, START + timedelta(hours=23, minutes=30))


def _next_day(run: Run) -> None:
    at(run.gateway, START + timedelta(hours=24, minutes=5))  # missed, and not updated


def _days_later(run: Run) -> None:
    at(run.gateway, START + timedelta(days=3, hours=1))  # the escalation reaches directors


# --- the Support Update Service (§3.8, R4.1–R4.4) ----------------------------------------------


def _subscription(run: Run) -> None:
    """Bernd asks at the SUS address; the admin approves by answering the notice (R4.2)."""
    asked = mail(sender=BERND, to=SUS, subject="SUS", body="Please subscribe me.\n")
    assert run.gateway.send(asked, mail_from=BERND, rcpt=SUS).code == 250
    (notice,) = run.sink.wait_to(ADMIN)
    assert run.gateway.send(admin_answer(notice, "#approve"), mail_from=ADMIN).code == 250
    run.sink.wait_to(BERND)
    assert state_of(run.gateway.runtime, BERND) == "active"


def _bulletin(run: Run) -> None:
    """A bulletin published as `gateway bulletins publish` does, fanned out by the workers."""
    rt = run.gateway.runtime
    bulletins.publish(rt, new_bulletin(rt), PUBLISHER, hand_over=True)
    eventually(lambda: _bulletins_to(run.sink, BERND))
    run.sink.settle()  # recorded as sent before it comes back


def _bulletins_to(sink: Sink, address: str) -> list[Received]:
    return [m for m in sink.to(address) if m.message["List-Id"]]


def _bounce(run: Run) -> None:
    """The bulletin comes back to its VERP return path; at the (lowered) threshold the
    subscription is suspended and the admins hear of it (R4.4)."""
    (bulletin,) = _bulletins_to(run.sink, BERND)
    message_id, path = bulletin.message["Message-ID"].strip(), bulletin.mail_from
    dsn = returned("sus_bounce_exim_en.eml", path, message_id, "dkim")
    assert run.gateway.send(dsn, mail_from="", rcpt=path).code == 250
    eventually(lambda: state_of(run.gateway.runtime, BERND) == "suspended")


# --- SecureHands and the assessments (§3.11–§3.13) ---------------------------------------------

SESSIONS = "SecureHands: firewall cluster upgrade"
SCAN = "Vulnerability Assessment of our perimeter"
BASELINE = "Technical Baseline Assessment of the FortiGate cluster"


def _lot_expires(run: Run) -> None:
    """Two lots bought as `gateway units purchase` records them; the first one's 12 months end
    on Monday 23rd at 00:00 in Berlin with its units unused (§3.11.2)."""
    hands.buy(run.gateway, "4", date(2025, 11, 23), "PO-OLD")  # valid until 2026-11-22
    hands.buy(run.gateway, "10", date(2026, 3, 1), "PO-NEW")  # 90 days left on 1 December
    hands.at(run.gateway, START + timedelta(days=6, minutes=30))  # Tuesday 24th, 10:30 Berlin


def _session_delivered(run: Run) -> None:
    run.srs["sessions"] = open_sr(run.gateway, run.sink, subject=SESSIONS)
    commands = "#sow-agreed units=6\n#session-request\n#delivered 2026-11-24T09:00/10:00"
    said = hands.soc(run.gateway, run.sink, run.srs["sessions"], commands)
    assert said.count("done ") == 3, said
    assert len(statements(run.sink)) == 1


def _session_cancelled_late(run: Run) -> None:
    commands = "#session-request\n#scheduled 2026-11-25T10:00/13:00\n#cancel"  # tomorrow
    said = hands.soc(run.gateway, run.sink, run.srs["sessions"], commands)
    assert "3 units forfeited" in said, said


def _session_queried(run: Run) -> None:
    (statement,) = statements(run.sink)
    answer(run.gateway, statement, "We dispute the last half hour.")
    assert len(queries(run.sink)) == 1


def _scan_rescheduled_late(run: Run) -> None:
    sr_id = open_sr(run.gateway, run.sink, subject=SCAN)
    commands = "#sow-agreed ips=5\n#scheduled 2026-11-25T09:00/12:00\n"
    commands += "#reschedule 2026-11-30T09:00/12:00"
    said = hands.soc(run.gateway, run.sink, sr_id, commands)
    assert "flagged to the SOC" in said, said
    # a scan done earlier, its report reviewed on 5 November: the reminder to ask for the
    # remediation scan is due on 28 November
    done = open_sr(run.gateway, run.sink, subject=f"{SCAN} (earlier)")
    commands = "#sow-agreed ips=5 ordered=2026-11-01\n#scheduled 2026-11-02T09:00/12:00\n"
    commands += "#reviewed 2026-11-05"
    said = hands.soc(run.gateway, run.sink, done, commands)
    assert said.count("done ") == 3, said


def _week_later(run: Run) -> None:
    # the query's 5 working days are up, the new lot's units are 90 days from their end, the
    # remediation scan's reminder is due
    hands.at(run.gateway, START + timedelta(days=14))


def _short_of_units(run: Run) -> None:
    sr_id = open_sr(run.gateway, run.sink, subject=BASELINE)
    said = hands.soc(run.gateway, run.sink, sr_id, "#sow-agreed units=10 fixed=10")
    assert "top-up notice sent" in said, said


def _next_quarter(run: Run) -> None:
    # §3.10: the account reviews of 2026 Q4, on the SOC's first working day of 2027 at 09:00
    hands.at(run.gateway, datetime(2027, 1, 4, 10, 0, tzinfo=UTC))


STEPS = [
    Step(("request_opened_customer", "request_opened_soc"), _open),
    Step(("priority1_requested_soc", "tam_notice_staff"), _priority1),
    Step(("sender_unregistered_customer",), _stranger),
    Step(("customer_replied_soc",), _reply),
    Step(("soc_answer_customer",), _answer),
    Step(("command_result_soc",), _command),
    Step(
        ("escalation_opened_soc", "escalation_notice_staff", "escalation_recorded_customer"),
        _escalate,
    ),
    Step(("target_warning_soc", "progress_review_soc", "tam_digest_staff"), _next_morning),
    Step(("target_breached_soc", "not_updated_soc"), _next_day),
    Step(("escalation_director_soc",), _days_later),
    Step(("sus_request_staff", "sus_command_staff", "sus_confirmation_customer"), _subscription),
    Step(("sus_bulletin_customer",), _bulletin),
    Step(("sus_suspended_staff",), _bounce),
    Step(("units_expired_customer",), _lot_expires),
    Step(("session_statement_customer",), _session_delivered),
    Step(("units_forfeited_customer",), _session_cancelled_late),
    Step(("session_queried_soc",), _session_queried),
    Step(("scan_flag_soc",), _scan_rescheduled_late),
    Step(
        (
            "query_overdue_soc",
            "query_decided_customer",
            "units_expiring_customer",
            "scan_reminder_customer",
        ),
        _week_later,
    ),
    Step(("units_topup_customer", "units_topup_soc"), _short_of_units),
    Step(("account_review_staff",), _next_quarter),
]


def _generate(tmp_path: Path, dns: Any, algorithm: str) -> tuple[str, str]:
    """`gateway dkim generate`, its record published; returns (key file, selector)."""
    selector = f"gw-{algorithm}-{tmp_path.name[-12:].lower().replace('_', '-')}".strip("-")
    key_file = tmp_path / "dkim.key"
    args = ["--selector", selector, "--algorithm", algorithm, "--key-file", str(key_file)]
    result = CliRunner().invoke(app, ["dkim", "generate", *args, "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert shown["name"] == f"{selector}._domainkey.securecall.example"
    dns.txt(shown["name"], shown["record"])
    return str(key_file), selector


def _verify(received: Received, dns: Any) -> dict[bytes, bytes]:
    """The signature's tags, once dkimpy verified it against the test DNS server."""
    lookups = Resolver([dns.address]).lookups(5.0)
    assert dkim.verify(received.data, dnsfunc=lookups.dkim_txt), received.message["Subject"]
    field = received.message["DKIM-Signature"]
    return {
        k.strip().encode(): v.strip().encode()
        for k, _, v in (t.partition("=") for t in re.sub(r"\s+", "", str(field)).split(";") if t)
    }


@pytest.mark.parametrize("algorithm", ["ed25519", "rsa"])
def test_every_kind_of_mail_the_gateway_sends_is_signed_and_verifies(
    make_gateway: Any, sink: Sink, dns: Any, tmp_path: Path, algorithm: str
) -> None:
    key_file, selector = _generate(tmp_path, dns, algorithm)
    gateway = make_gateway(
        clock=OffsetClock(START),
        dkim_key_file=key_file,
        dkim_selector=selector,
        sus_bounce_score_threshold=1,  # one bounce suspends: the admins' report follows at once
    )
    run = Run(with_tam(gateway), sink, {})
    for step in STEPS:
        step.run(run)
    received = {m.message["Message-ID"].strip(): m for m in sink.settle()}
    with gateway.runtime.sessions.begin() as session:
        sent = session.execute(
            select(Delivery.message_id, Delivery.template, Delivery.audience, Delivery.status)
        ).all()
    seen = set()
    for message_id, template, audience, status in sent:
        assert status == "sent", (template, status)
        tags = _verify(received[message_id], dns)
        assert tags[b"d"] == b"securecall.example"
        assert tags[b"s"] == selector.encode()
        assert tags[b"a"] == (b"ed25519-sha256" if algorithm == "ed25519" else b"rsa-sha256")
        signed = set(tags[b"h"].decode().lower().split(":"))
        assert signed >= COVERED
        fields = {name.lower() for name in received[message_id].message}
        listed = {name for name in fields if name.startswith("list-")}
        assert signed >= listed  # RFC 8058 §4: the one-click unsubscribe fields are covered
        if template == "sus_bulletin":
            assert listed == LISTED
        seen.add(f"{template}_{audience}")
    assert seen == {t for step in STEPS for t in step.templates}


def test_a_signed_mail_that_is_changed_on_the_way_no_longer_verifies(
    tmp_path: Path, dns: Any
) -> None:
    key_file, selector = _generate(tmp_path, dns, "ed25519")
    signer = Signer("securecall.example", selector, "ed25519", Path(key_file).read_bytes().strip())
    data = signer.sign(as_bytes(_list_mail()))
    lookups = Resolver([dns.address]).lookups(5.0)
    assert dkim.verify(data, dnsfunc=lookups.dkim_txt)
    signed = re.search(rb"h=([^;]+);", re.sub(rb"\s+", b"", data.split(b"\r\n\r\n")[0]))
    assert signed is not None
    # RFC 8058 §4: the one-click unsubscribe fields are covered when a mail has them
    assert {b"list-id", b"list-unsubscribe", b"list-unsubscribe-post"} <= set(
        signed.group(1).lower().split(b":")
    )
    forged = data.replace(b"<https://example.com/u/1>", b"<https://evil.example/u/1>")
    assert not dkim.verify(forged, dnsfunc=lookups.dkim_txt)


def _list_mail() -> Any:
    from email.mime.text import MIMEText

    message = MIMEText("A bulletin.\n")
    for name, value in {
        "From": "SecureCall SOC <soc@securecall.example>",
        "To": "alice@example.com",
        "Subject": "Bulletin",
        "Date": "Wed, 18 Nov 2026 09:00:00 +0000",
        "Message-ID": "<b1@securecall.example>",
        "List-Id": "<fortigate.bulletins.securecall.example>",
        "List-Unsubscribe": "<https://example.com/u/1>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }.items():
        message[name] = value
    return message


def test_every_template_has_a_step_that_sends_it() -> None:
    stems = {p.name.split(".")[0] for p in TEMPLATES.glob("*.txt.j2") if not p.name.startswith("_")}
    assert stems == {t for step in STEPS for t in step.templates}


def test_a_key_file_that_holds_no_key_stops_the_start_and_a_half_setting_is_refused(
    tmp_path: Path,
) -> None:
    from gateway.core.settings import Settings
    from workers.signing import SigningKeyError

    garbage = tmp_path / "dkim.key"
    garbage.write_text("not a key\n")
    with pytest.raises(SigningKeyError, match="no Ed25519 seed nor RSA PEM"):
        Signer.from_settings(Settings(dkim_key_file=str(garbage), dkim_selector="gw"))
    with pytest.raises(ValueError, match="needs both DKIM_KEY_FILE and DKIM_SELECTOR"):
        Settings(dkim_key_file=str(garbage))
    with pytest.raises(ValueError, match="not a DKIM selector"):
        Settings(dkim_key_file=str(garbage), dkim_selector="gw_2026!")
