"""The admin web under test: the web side with /admin mounted as `gateway run` serves it, an
admin account, signed-in HTTP clients, and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from cli.serve import web_server
from gateway import directory
from gateway.core.runtime import Runtime
from gateway.edges.web import WebServer
from tests.support.services import free_port, missing

ADMIN = "root@securecall.example"
PASSWORD = "correct horse battery staple"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def add_admin(rt: Runtime, email: str = ADMIN, password: str = PASSWORD) -> None:
    with rt.sessions.begin() as session:
        directory.add_admin(session, email, password, rt.now())


class AdminWeb:
    """The web side of `rt` on a port of its own, with the admin web."""

    def __init__(self, rt: Runtime, port: int | None = None) -> None:
        self.rt = rt
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.server: WebServer = web_server(rt, "127.0.0.1", self.port)
        self.clients: list[httpx.Client] = []

    def start(self) -> AdminWeb:
        self.server.start()
        return self

    def stop(self) -> None:
        for client in self.clients:
            client.close()
        self.server.stop()

    def client(self) -> httpx.Client:
        """A visitor of its own (cookies); closed when the server stops."""
        client = httpx.Client(base_url=self.base, timeout=30, follow_redirects=False)
        self.clients.append(client)
        return client

    def signed_in(self, email: str = ADMIN, password: str = PASSWORD) -> httpx.Client:
        client = self.client()
        answer = sign_in(client, email, password)
        if answer.status_code != 303:
            raise AssertionError(f"sign-in answered {answer.status_code}: {answer.text[:500]}")
        return client


@contextmanager
def admin_web(rt: Runtime, port: int | None = None) -> Iterator[AdminWeb]:
    web = AdminWeb(rt, port).start()
    try:
        yield web
    finally:
        web.stop()


def csrf(client: httpx.Client, path: str = "/admin/login") -> str:
    """The CSRF token of the form on the page at `path` (the session's token)."""
    page = client.get(path)
    found = _CSRF.search(page.text)
    if found is None:
        raise AssertionError(f"no CSRF token on {path}: {page.status_code} {page.text[:300]}")
    return found.group(1)


def sign_in(client: httpx.Client, email: str, password: str, next_path: str = "") -> httpx.Response:
    token = csrf(client)
    form = {"csrf": token, "email": email, "password": password, "next": next_path}
    return client.post("/admin/login", data=form)


def post(client: httpx.Client, path: str, data: dict[str, Any], page: str) -> httpx.Response:
    """An action as its page's form sends it: with the token of `page`."""
    return client.post(path, data={"csrf": csrf(client, page), **data})


def flash(client: httpx.Client, answer: httpx.Response) -> str:
    """The message of the page an action sent the admin to."""
    if answer.status_code != 303:
        raise AssertionError(f"{answer.status_code}: {answer.text[:500]}")
    shown = client.get(answer.headers["location"])
    found = re.search(r'id="flash"[^>]*>([^<]*)<', shown.text)
    return found.group(1) if found else ""


def chromium() -> tuple[Any, str]:
    """Playwright's sync API and Debian's Chromium (never a browser Playwright downloads); under
    GATEWAY_REQUIRE_SERVICES=1 a missing one fails the test."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        missing("Chromium (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("Playwright (pip install playwright)")
    return sync_playwright, str(binary)


@contextmanager
def browser() -> Iterator[Any]:
    """One headless Chromium (a module's tests share it; each opens a context of its own)."""
    sync_playwright, binary = chromium()
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=binary, headless=True)
        try:
            yield launched
        finally:
            launched.close()


def shot(page: Any, name: str) -> None:
    """A screenshot of the whole page, kept in test-artifacts/ (git-ignored)."""
    page.screenshot(path=str(ARTIFACTS / f"admin-{name}.png"), full_page=True)
