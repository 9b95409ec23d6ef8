"""Who is signed in to the admin web: sign-in against the admin accounts (argon2id), limited per
address and per client IP in the database (every web process counts together), sessions in
signed cookies, CSRF tokens, sign-out.

The session cookie (Starlette's SessionMiddleware: itsdangerous-signed, HttpOnly, SameSite
Strict, Secure behind an https GATEWAY_PUBLIC_URL) holds the address, the account's session
epoch and the sign-in time. Each request checks all three against the database, so a removed
account, a sign-out or a new password ends every copy of the cookie at once, and a session ends
GATEWAY_ADMIN_SESSION_HOURS after its sign-in whatever the cookie says.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware

from gateway import directory
from gateway.core.runtime import Runtime
from gateway.storage.db import transaction
from gateway.storage.limits import count_signin, forget_signin, forget_signins

COOKIE = "gateway_admin"
WRONG = "Wrong address or password."  # the same for an unknown address: nothing is told


@dataclass(frozen=True)
class Limited:
    """Too many attempts of this address or from this IP: the minutes until the window ends."""

    minutes: int


def middleware(rt: Runtime) -> Middleware:
    settings = rt.settings
    return Middleware(
        SessionMiddleware,
        secret_key=session_key(rt.keys),
        session_cookie=COOKIE,
        max_age=round(settings.admin_session_hours * 3600),
        path="/admin",
        same_site="strict",
        https_only=settings.public_url.startswith("https://"),
    )


def session_key(keys: Mapping[str, bytes]) -> str:
    """A key of its own for the cookies, derived from GATEWAY_SECRET_KEY's signing key (so that
    a cookie can never pass for a Message-ID's MAC, or the other way round)."""
    first = next(iter(keys.values()))
    return hmac.new(first, b"securecall admin web sessions", hashlib.sha256).hexdigest()


def csrf_token(session: MutableMapping[str, Any]) -> str:
    """The session's CSRF token, made on first use (also before sign-in: the sign-in form)."""
    token = session.get("csrf")
    if not isinstance(token, str) or len(token) < 32:
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def csrf_valid(session: MutableMapping[str, Any], given: object) -> bool:
    expected = session.get("csrf")
    if not isinstance(expected, str) or not expected or not isinstance(given, str):
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


def signed_in(rt: Runtime, session: MutableMapping[str, Any]) -> str | None:
    """The admin whose session this is, if it is one still: signed, not expired, the account
    there with the epoch the cookie was issued for."""
    email, epoch, since = session.get("admin"), session.get("epoch"), session.get("since")
    if not isinstance(email, str) or not isinstance(epoch, int) or not isinstance(since, float):
        return None
    age = rt.now().timestamp() - since
    if age < -60 or age > rt.settings.admin_session_hours * 3600:
        return None
    with rt.sessions.begin() as db:
        current = directory.session_epoch(db, email)
    return email if current is not None and current == epoch else None


def sign_in(rt: Runtime, email: str, password: str, ip: str) -> directory.Verified | Limited | None:
    """Count the attempt for the address and the IP, then check the password; None: wrong."""
    settings, now = rt.settings, rt.now()
    window = timedelta(minutes=settings.admin_signin_window_minutes)
    with transaction(rt.sessions) as conn:
        forget_signins(conn, now - window)
        started = [
            count_signin(conn, f"address:{email}", now, window, settings.admin_signin_per_address),
            count_signin(conn, f"ip:{ip}", now, window, settings.admin_signin_per_ip),
        ]
    if any(started):
        ends = max(s for s in started if s is not None) + window
        return Limited(max(1, round((ends - now).total_seconds() / 60 + 0.5)))
    with rt.sessions.begin() as db:
        verified = directory.verify_admin(db, email, password, now)
    if verified is not None:
        with transaction(rt.sessions) as conn:
            forget_signin(conn, f"address:{email}")
    return verified


def begin(rt: Runtime, session: MutableMapping[str, Any], verified: directory.Verified) -> None:
    """A new session: everything of the one before is dropped, a new CSRF token made."""
    session.clear()
    since, csrf = rt.now().timestamp(), secrets.token_urlsafe(32)
    session.update(admin=verified.email, epoch=verified.epoch, since=since, csrf=csrf)


def sign_out(rt: Runtime, session: MutableMapping[str, Any], email: str) -> None:
    """Every session of this account ends, this one's cookie is emptied."""
    with rt.sessions.begin() as db:
        directory.end_sessions(db, email)
    session.clear()


def local_next(target: str | None) -> str:
    """Where to go after signing in: a path of the admin web only, never another site."""
    target = target or ""
    plain = not any(c in target for c in "\\\r\n")
    if plain and target.startswith("/admin/") and not target.startswith("/admin//"):
        return target
    return "/admin/"
