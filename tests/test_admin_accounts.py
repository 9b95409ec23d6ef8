"""Admin accounts and who reaches the admin web: `gateway admins add|list|remove`, argon2id
hashes, sign-in limited per address and per IP for all web processes together, sessions in
signed cookies that expire and end at sign-out, CSRF tokens on every action."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import itsdangerous
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from cli.app import app
from gateway.admin import auth, site
from gateway.assembly import build
from gateway.core.runtime import Runtime
from gateway.storage.models import AdminAccount, StoredMail
from tests.support.admin import (
    ADMIN,
    PASSWORD,
    AdminWeb,
    add_admin,
    admin_web,
    csrf,
    sign_in,
)
from tests.support.harness import OffsetClock, populate, settings_for

STAFF = "lead@securecall.example"  # SOC staff in the test directory: not an admin account
SUS_ADMIN = "sus-admin@securecall.example"  # GATEWAY_ADMIN_ADDRESSES: not an account either


@pytest.fixture
def gateway_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., str]:
    monkeypatch.setenv("GATEWAY_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("GATEWAY_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    runner = CliRunner()

    def run(*args: str, stdin: str = "", code: int = 0) -> str:
        result = runner.invoke(app, list(args), input=stdin, catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result.output

    return run


@pytest.fixture
def database_url(request: pytest.FixtureRequest) -> str:
    """SQLite; PostgreSQL too where a test says `@BOTH`."""
    return str(request.getfixturevalue(getattr(request, "param", "sqlite_url")))


BOTH = pytest.mark.parametrize("database_url", ["sqlite_url", "postgres_url"], indirect=True)


@pytest.fixture
def clock() -> OffsetClock:
    return OffsetClock()


@pytest.fixture
def rt(tmp_path: Path, database_url: str, clock: OffsetClock) -> Iterator[Runtime]:
    """A runtime with the test directory and one admin account, on SQLite and PostgreSQL."""
    runtime = make_runtime(tmp_path, database_url, clock)
    add_admin(runtime)
    yield runtime
    runtime.sessions.kw["bind"].dispose()


def make_runtime(tmp_path: Path, url: str, clock: OffsetClock, **overrides: Any) -> Runtime:
    settings = settings_for(tmp_path / "var", url, sink_port=1, **overrides)
    runtime = build(settings, clock=clock)
    populate(runtime)
    return runtime


@pytest.fixture
def web(rt: Runtime) -> Iterator[AdminWeb]:
    with admin_web(rt) as started:
        yield started


def test_admins_add_reads_the_password_from_stdin_and_stores_only_an_argon2id_hash(
    gateway_cli: Callable[..., str], tmp_path: Path
) -> None:
    assert "admin ada@securecall.example added" in gateway_cli(
        "admins", "add", "Ada@SecureCall.example", stdin=f"{PASSWORD}\n"
    )
    out = gateway_cli("admins", "add", "x@securecall.example", stdin="short\n", code=2)
    assert "at least 12 characters" in out
    listed = json.loads(gateway_cli("admins", "list", "--json"))
    assert [row["email"] for row in listed] == ["ada@securecall.example"]
    assert "password" not in json.dumps(listed)  # the list never shows the hash
    again = gateway_cli("admins", "add", "ada@securecall.example", stdin="another long password\n")
    assert "has a new password" in again
    runtime = build(settings_for(tmp_path / "var", f"sqlite:///{tmp_path / 'cli.db'}", sink_port=1))
    with runtime.sessions.begin() as session:
        account = session.scalars(select(AdminAccount)).one()
        assert account.password_hash.startswith("$argon2id$")
        assert PASSWORD not in account.password_hash
        assert account.session_epoch == 1  # the new password ended the sessions of the old one
    runtime.sessions.kw["bind"].dispose()
    assert "removed" in gateway_cli("admins", "remove", "ada@securecall.example")
    assert "no admin account" in gateway_cli("admins", "remove", "ada@securecall.example", code=2)
    assert json.loads(gateway_cli("admins", "list", "--json")) == []


def test_a_visitor_without_a_session_is_sent_to_the_sign_in_for_every_page(
    web: AdminWeb,
) -> None:
    client = web.client()
    answer = client.get("/admin/")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/admin/login?next=%2Fadmin%2F"
    for spec in site.specs():
        path = filled(spec.path)
        answer = client.request(spec.method, f"/admin{path}", data={"csrf": "x"})
        assert answer.status_code in (303, 403), (spec.path, answer.status_code)
        if spec.method == "GET":
            assert answer.headers["location"].startswith("/admin/login?next="), spec.path
    assert client.get("/admin/login").status_code == 200


@BOTH
def test_a_wrong_password_and_an_unknown_address_get_the_same_refusal(web: AdminWeb) -> None:
    client = web.client()
    texts = []
    for email, password in (
        (ADMIN, "not the password at all"),
        ("nobody@securecall.example", PASSWORD),
        (STAFF, PASSWORD),  # SOC staff are no admin accounts unless added
        (SUS_ADMIN, PASSWORD),
    ):
        answer = sign_in(client, email, password)
        assert answer.status_code == 401
        assert "Wrong address or password." in answer.text
        texts.append(answer.text.replace(email, "EMAIL"))
        assert client.get("/admin/").status_code == 303  # still not signed in
    assert len(set(texts)) == 1
    assert sign_in(client, ADMIN, PASSWORD).status_code == 303
    assert client.get("/admin/").status_code == 200


def test_the_session_cookie_is_httponly_samesite_and_secure_behind_https(
    tmp_path: Path, sqlite_url: str
) -> None:
    plain = make_runtime(tmp_path / "a", sqlite_url, OffsetClock())
    with admin_web(plain) as web:
        cookie = web.client().get("/admin/login").headers["set-cookie"]
    assert cookie.startswith(f"{auth.COOKIE}=")
    assert "httponly" in cookie.lower()
    assert "samesite=strict" in cookie.lower()
    assert "path=/admin" in cookie
    assert "secure" not in cookie.lower()  # http://127.0.0.1: a browser would drop it
    https = plain.settings.model_copy(update={"public_url": "https://gateway.example"})
    behind_tls = build(https)
    with admin_web(behind_tls) as web:
        answer = web.client().get("/admin/login")
    assert "; secure" in answer.headers["set-cookie"].lower()
    assert "script-src 'self'" in answer.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    assert answer.headers["x-frame-options"] == "DENY"


@BOTH
def test_a_forged_or_foreign_session_cookie_opens_nothing(web: AdminWeb, rt: Runtime) -> None:
    content = {"admin": ADMIN, "epoch": 0, "since": rt.now().timestamp(), "csrf": "t" * 43}
    data = base64.b64encode(json.dumps(content).encode())
    forged = itsdangerous.TimestampSigner("a key that is not the gateway's").sign(data).decode()
    unsigned = data.decode()
    real_key = itsdangerous.TimestampSigner(auth.session_key(rt.keys))
    staff = {**content, "admin": STAFF}  # rightly signed, but no account
    not_an_account = real_key.sign(base64.b64encode(json.dumps(staff).encode())).decode()
    for cookie in (forged, unsigned, not_an_account, "garbage"):
        client = web.client()
        client.cookies.set(auth.COOKIE, cookie, path="/admin")
        assert client.get("/admin/review").status_code == 303
        refused = client.post("/admin/review/1/dismiss", data={"csrf": "t" * 43})
        assert refused.status_code == 403
    genuine = real_key.sign(data).decode()  # what only the gateway's key can make
    client = web.client()
    client.cookies.set(auth.COOKIE, genuine, path="/admin")
    assert client.get("/admin/review").status_code == 200


@BOTH
def test_every_action_refuses_a_missing_or_wrong_csrf_token_and_changes_nothing(
    web: AdminWeb, rt: Runtime
) -> None:
    held = hold_a_mail(rt)
    client = web.signed_in()
    actions = [spec for spec in site.specs() if spec.method == "POST"]
    assert len(actions) >= 12
    for spec in actions:
        path = f"/admin{filled(spec.path, held)}"
        for form in ({}, {"csrf": "not-the-token"}):
            answer = client.post(path, data=form)
            assert answer.status_code == 403, (spec.path, answer.status_code)
            assert "Nothing was changed" in answer.text
    for path in ("/admin/logout", "/admin/login"):
        assert client.post(path, data={}).status_code == 403
    with rt.sessions.begin() as session:
        assert session.get_one(StoredMail, held).status == "review"
    assert client.get("/admin/").status_code == 200  # the refusals did not sign anyone out
    token = csrf(client, f"/admin/review/{held}")
    done = client.post(f"/admin/review/{held}/dismiss", data={"csrf": token})
    assert done.status_code == 303
    with rt.sessions.begin() as session:
        assert session.get_one(StoredMail, held).status == "dismissed"


def test_actions_are_post_only(web: AdminWeb, rt: Runtime) -> None:
    held = hold_a_mail(rt)
    client = web.signed_in()
    for path in (f"/admin/review/{held}/release", f"/admin/review/{held}/dismiss", "/admin/logout"):
        assert client.get(path).status_code == 405
    with rt.sessions.begin() as session:
        assert session.get_one(StoredMail, held).status == "review"


@BOTH
def test_signing_out_ends_the_session_and_every_copy_of_its_cookie(web: AdminWeb) -> None:
    client = web.signed_in()
    copied = client.cookies.get(auth.COOKIE)
    assert client.get("/admin/review").status_code == 200
    out = client.post("/admin/logout", data={"csrf": csrf(client, "/admin/")})
    assert (out.status_code, out.headers["location"]) == (303, "/admin/login")
    assert client.get("/admin/review").status_code == 303
    replay = web.client()
    replay.cookies.set(auth.COOKIE, copied or "", path="/admin")
    assert replay.get("/admin/review").status_code == 303  # the copy opens nothing either


def test_a_session_ends_after_admin_session_hours(web: AdminWeb, clock: OffsetClock) -> None:
    client = web.signed_in()
    clock.advance(timedelta(hours=7, minutes=50))
    assert client.get("/admin/").status_code == 200
    clock.advance(timedelta(minutes=20))  # 8 h 10 min after the sign-in
    assert client.get("/admin/").status_code == 303


def test_removing_an_account_ends_its_sessions_at_once(web: AdminWeb, rt: Runtime) -> None:
    client = web.signed_in()
    with rt.sessions.begin() as session:
        session.delete(session.scalars(select(AdminAccount)).one())
    assert client.get("/admin/").status_code == 303


@BOTH
def test_sign_in_is_limited_per_address_for_all_web_processes_together(
    tmp_path: Path, database_url: str
) -> None:
    clock = OffsetClock()
    first = make_runtime(tmp_path / "a", database_url, clock)
    add_admin(first)
    second = build(first.settings, clock=clock)  # another process on the same database
    with admin_web(first) as one, admin_web(second) as other:
        for n in range(5):  # GATEWAY_ADMIN_SIGNIN_PER_ADDRESS, spread over two processes
            web = one if n % 2 else other
            assert sign_in(web.client(), ADMIN, f"wrong password {n:03d}").status_code == 401
        limited = sign_in(one.client(), ADMIN, PASSWORD)  # the right one, too late
        assert limited.status_code == 429
        assert "Too many sign-in attempts. Try again in 15 minutes." in limited.text
        assert sign_in(other.client(), ADMIN, PASSWORD).status_code == 429
        clock.advance(timedelta(minutes=15, seconds=1))
        assert sign_in(other.client(), ADMIN, PASSWORD).status_code == 303
    for runtime in (first, second):
        runtime.sessions.kw["bind"].dispose()


def test_sign_in_is_limited_per_client_ip_whatever_the_address(
    tmp_path: Path, sqlite_url: str
) -> None:
    clock = OffsetClock()
    runtime = make_runtime(tmp_path, sqlite_url, clock, admin_signin_per_ip=6)
    add_admin(runtime)
    with admin_web(runtime) as web:
        for n in range(6):
            guess = sign_in(web.client(), f"guess{n}@securecall.example", PASSWORD)
            assert guess.status_code == 401
        assert sign_in(web.client(), ADMIN, PASSWORD).status_code == 429  # this IP is done
    runtime.sessions.kw["bind"].dispose()


def test_a_sign_in_goes_on_to_the_page_asked_for_and_never_elsewhere(web: AdminWeb) -> None:
    for asked, went in (
        ("/admin/reports", "/admin/reports"),
        ("https://evil.example/", "/admin/"),
        ("//evil.example/admin/", "/admin/"),
        ("/admin//evil.example", "/admin/"),
    ):
        answer = sign_in(web.client(), ADMIN, PASSWORD, next_path=asked)
        assert (answer.status_code, answer.headers["location"]) == (303, went)


def hold_a_mail(rt: Runtime) -> int:
    """A stranger's mail in the review queue, as intake keeps it."""
    from gateway.intake.receipts import RawMail
    from gateway.intake.receive import receive
    from tests.support.harness import mail

    raw = RawMail(mail(sender="stranger@unknown.example"), "smtp", "stranger@unknown.example")
    receipt = receive(raw, rt)
    assert receipt.outcome == "hold", receipt
    return receipt.stored_id


def filled(path: str, number: int = 1) -> str:
    """A route's path with its parameters given (ids `number`, names `x`)."""
    for name in ("stored_id", "delivery_id", "bulletin_id", "request_id"):
        path = path.replace(f"{{{name}:int}}", str(number))
    return path.replace("{sr_id}", "SR-AAAA-AAAA").replace("{name}", "sla")
