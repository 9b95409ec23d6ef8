"""The web side (§3.8, R4.3, RFC 8058): the one-click unsubscribe and its page, health, metrics.

Starlette, served by uvicorn on a thread of the process (`gateway run`, or `gateway web` alone
behind a reverse proxy). Its pages are Jinja2 templates under templates/web/, autoescaped.
`app(rt, mounts=…, middleware=…)` takes more: the composition root (cli/serve.py) mounts the
admin web there (gateway/admin/, its routes under /admin and its session middleware).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import uvicorn
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from gateway.core.runtime import Runtime
from gateway.observe.exposition import render_metrics
from gateway.storage.db import transaction
from gateway.sus.subscriptions import How
from gateway.sus.unsubscribing import Stopping, look_up, unsubscribe_by_token

log = logging.getLogger(__name__)
TEMPLATES = Path(__file__).resolve().parents[2] / "templates" / "web"
KINDS = {"patch": "patches", "upgrade": "software upgrades", "bulletin": "technical bulletins"}
MAX_FORM = 16 * 1024  # bytes: the one-click body is 26 (RFC 8058 §3.1)
# The token is in the URL: no Referer may carry it elsewhere; nothing to frame, cache or run.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


class Pages:
    """The endpoints, bound to one runtime; blocking work runs in Starlette's thread pool."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.env = Environment(
            loader=FileSystemLoader(str(TEMPLATES)),
            autoescape=select_autoescape(["html.j2"], default=True),
            undefined=StrictUndefined,
            auto_reload=False,
        )

    def page(self, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        body = self.env.get_template(template).render(**values)
        return HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)

    def shown(self, template: str, stopping: Stopping | None) -> HTMLResponse:
        if stopping is None:  # the same answer for every token that is not good
            return self.page("invalid.html.j2", status=400)
        kinds = ", ".join(KINDS.get(k, k) for k in stopping.kinds)
        return self.page(
            template,
            product=stopping.product,
            kinds=kinds,
            state=stopping.state,
            cancelled=stopping.cancelled,
        )

    async def unsubscribe_page(self, request: Request) -> Response:
        """GET: what would be stopped, and one button. Never unsubscribes (link scanners)."""
        stopping = await run_in_threadpool(look_up, self.rt, request.path_params["token"])
        return self.shown("unsubscribe.html.j2", stopping)

    async def unsubscribe(self, request: Request) -> Response:
        """POST: at once. The body `List-Unsubscribe=One-Click` is a mail client's one-click
        (RFC 8058 §3.1); anything else is the page's button."""
        if int(request.headers.get("content-length") or 0) > MAX_FORM:
            return self.page("invalid.html.j2", status=400)
        form = await request.form(max_files=0, max_fields=8, max_part_size=MAX_FORM)
        one_click = form.get("List-Unsubscribe") == "One-Click"
        how = How.one_click if one_click else How.web
        token = request.path_params["token"]
        stopping = await run_in_threadpool(unsubscribe_by_token, self.rt, token, how)
        return self.shown("unsubscribed.html.j2", stopping)

    def healthz(self, request: Request) -> Response:
        """200 while the database answers, 503 when it does not."""
        try:
            with transaction(self.rt.sessions, readonly=True) as conn:
                conn.execute(text("SELECT 1"))
        except (SQLAlchemyError, OSError) as exc:
            log.warning("health check: the database does not answer: %s", exc)
            return PlainTextResponse("database unavailable\n", status_code=503)
        return PlainTextResponse("ok\n")

    def metrics(self, request: Request) -> Response:
        """The Prometheus exposition (gateway/observe): counters, and the lags read now."""
        body, content_type = render_metrics(self.rt)
        return Response(body, media_type=content_type)


def routes(rt: Runtime, pages: Pages) -> list[BaseRoute]:
    """The gateway's web routes; `Mount("/admin", routes=…)` adds gateway/admin/."""
    return [
        Route("/u/{token:path}", pages.unsubscribe_page, methods=["GET"]),
        Route("/u/{token:path}", pages.unsubscribe, methods=["POST"]),
        Route("/healthz", pages.healthz, methods=["GET"]),
        Route("/metrics", pages.metrics, methods=["GET"]),
    ]


def app(
    rt: Runtime, *, mounts: Sequence[BaseRoute] = (), middleware: Sequence[Middleware] = ()
) -> Starlette:
    """The ASGI application: `routes`, then `mounts` (the admin pages), behind `middleware`
    (sessions, CSRF)."""
    return Starlette(routes=[*routes(rt, Pages(rt)), *mounts], middleware=list(middleware))


class WebServer:
    """uvicorn serving `app(rt)` on a thread of its own, on a socket bound at `start` (so that a
    busy port is an error there, not a log line in the thread)."""

    def __init__(
        self,
        rt: Runtime,
        host: str,
        port: int,
        *,
        mounts: Sequence[BaseRoute] = (),
        middleware: Sequence[Middleware] = (),
    ) -> None:
        self.rt, self.host, self.port = rt, host, port
        self.mounts, self.middleware = mounts, middleware
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None

    def start(self, timeout: float = 15.0) -> None:
        sock = _bound(self.host, self.port)
        config = uvicorn.Config(
            app(self.rt, mounts=self.mounts, middleware=self.middleware),
            log_config=None,
            access_log=False,
            lifespan="off",
            log_level="warning",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [sock]}, name="web", daemon=True
        )
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started and self.thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        if not self.server.started:
            raise OSError(f"the web server on {self.host}:{self.port} did not start")

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=10)


def _bound(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    sock.set_inheritable(True)
    return sock
