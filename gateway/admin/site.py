"""The admin web (`/admin/`), mounted on the web side's Starlette app (gateway/edges/web.py
`app(rt, mounts=…, middleware=…)`): the views of gateway/admin/ as routes, each behind the
sign-in and each action behind its CSRF token; Jinja2 pages of templates/web/admin/, a CSS file
and one small script, all served from here (nothing from elsewhere: the CSP says so).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from gateway.admin import (
    auth,
    bulletins,
    deliveries,
    held,
    home,
    reports,
    requests,
    subscriptions,
    wording,
)
from gateway.admin.views import (
    REFUSED,
    Document,
    Done,
    Renderings,
    Result,
    Shown,
    Spec,
    Visit,
)
from gateway.core.runtime import Runtime

log = logging.getLogger(__name__)
TEMPLATES = Path(__file__).resolve().parents[2] / "templates" / "web" / "admin"
STATIC = {"admin.css": "text/css", "admin.js": "text/javascript", "favicon.svg": "image/svg+xml"}
MAX_FORM = 2 * 1024 * 1024  # bytes: a bulletin of 256 K characters, URL-encoded
VIEWS = (home, held, requests, subscriptions, bulletins, deliveries, reports)
NAV = (
    ("/review", "Review queue"),
    ("/quarantine", "Quarantine"),
    ("/requests", "Service Requests"),
    ("/escalations", "Escalations"),
    ("/subscriptions", "Subscriptions"),
    ("/bulletins", "Bulletins"),
    ("/deliveries", "Deliveries"),
    ("/reports", "Reports"),
)
# Everything from the gateway itself; the one script is a file of it, so no inline script runs.
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self'; connect-src 'self'; frame-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class Site:
    """What `app` mounts: the routes under /admin, and the session middleware."""

    mounts: list[BaseRoute]
    middleware: list[Middleware]


def mount(rt: Runtime, renderings: Renderings) -> Site:
    pages = Pages(rt, renderings)
    routes: list[BaseRoute] = [
        Route("/login", pages.login_page, methods=["GET"]),
        Route("/login", pages.login, methods=["POST"]),
        Route("/logout", pages.logout, methods=["POST"]),
        Route("/static/{name}", pages.static, methods=["GET"]),
    ]
    routes += [pages.route(spec) for module in VIEWS for spec in module.ROUTES]
    return Site([Mount("/admin", routes=routes)], [auth.middleware(rt)])


def specs() -> list[Spec]:
    """Every view of the admin web (the tests walk them)."""
    return [spec for module in VIEWS for spec in module.ROUTES]


class Pages:
    """The Starlette side: sessions, forms and templates around the views."""

    def __init__(self, rt: Runtime, renderings: Renderings) -> None:
        self.rt, self.renderings = rt, renderings
        self.env = Environment(
            loader=FileSystemLoader(str(TEMPLATES)),
            autoescape=True,
            undefined=StrictUndefined,
            auto_reload=False,
        )
        wording.install(self.env, rt.settings.soc_timezone)
        self.files = {name: (TEMPLATES / "static" / name).read_bytes() for name in STATIC}

    def route(self, spec: Spec) -> Route:
        async def endpoint(request: Request) -> Response:
            if spec.method == "POST":
                return await self._act(request, spec)
            return await self._show(request, spec)

        return Route(spec.path, endpoint, methods=[spec.method])

    async def _show(self, request: Request, spec: Spec) -> Response:
        admin = await run_in_threadpool(auth.signed_in, self.rt, request.session)
        if admin is None:
            wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse("/admin/login?" + urlencode({"next": wanted}), 303)
        visit = Visit(
            self.rt, admin, self.renderings, request.path_params, dict(request.query_params)
        )
        result = await run_in_threadpool(spec.view, visit)
        return self.respond(request, result, admin)

    async def _act(self, request: Request, spec: Spec) -> Response:
        form = await self._form(request)
        if form is None:
            return self.refusal(request, 413, "That form is too large.")
        admin = await run_in_threadpool(auth.signed_in, self.rt, request.session)
        if admin is None:
            return self.refusal(request, 403, "You are not signed in. Nothing was changed.")
        if not auth.csrf_valid(request.session, form.get("csrf")):
            return self.refusal(request, 403, "This form has expired. Nothing was changed.")
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        kinds = tuple(v for v in form.getlist("kinds") if isinstance(v, str))
        visit = Visit(
            self.rt, admin, self.renderings, request.path_params, {}, fields, checked=kinds
        )
        try:
            result = await run_in_threadpool(spec.view, visit)
        except REFUSED as exc:
            result = Done(spec.back_for(visit), str(exc), error=True)
        if isinstance(result, Done):  # a change made or refused (not a preview)
            outcome = "refused" if result.error else "done"
            log.info(
                "admin %s: %s %s (%s)",
                admin,
                spec.name,
                request.url.path,
                outcome,
                extra={"event": "admin", "admin": admin, "action": spec.name, "outcome": outcome},
            )
        return self.respond(request, result, admin)

    def respond(self, request: Request, result: Result, admin: str | None) -> Response:
        if isinstance(result, Done):
            request.session["flash"] = {"text": result.message, "error": result.error}
            return RedirectResponse("/admin" + result.to, 303)
        if isinstance(result, Document):
            headers = {**HEADERS, **result.headers}
            return Response(result.body, media_type=result.media_type, headers=headers)
        if not isinstance(result, Shown):
            raise TypeError(f"a view returned {result!r}")
        return self.render(request, result.template, result.values, result.status, admin)

    def render(
        self,
        request: Request,
        template: str,
        values: dict[str, Any],
        status: int = 200,
        admin: str | None = None,
    ) -> HTMLResponse:
        common = {
            "admin": admin,
            "csrf": auth.csrf_token(request.session),
            "flash": request.session.pop("flash", None),
            "nav": NAV if admin else (),
            "here": request.url.path.removeprefix("/admin"),
        }
        body = self.env.get_template(template).render(**common, **values)
        return HTMLResponse(body, status_code=status, headers=HEADERS)

    def refusal(self, request: Request, status: int, message: str) -> HTMLResponse:
        return self.render(request, "refused.html.j2", {"message": message}, status)

    async def _form(self, request: Request) -> FormData | None:
        """The POSTed form, or None when it is larger than any form of these pages (or does not
        say its length: every browser does)."""
        length = request.headers.get("content-length", "")
        if not length.isdigit() or int(length) > MAX_FORM:
            return None
        return await request.form(max_files=0, max_fields=64, max_part_size=MAX_FORM)

    async def login_page(self, request: Request) -> Response:
        if await run_in_threadpool(auth.signed_in, self.rt, request.session):
            return RedirectResponse("/admin/", 303)
        target = auth.local_next(request.query_params.get("next"))
        return self.render(request, "login.html.j2", {"next": target, "error": "", "email": ""})

    async def login(self, request: Request) -> Response:
        form = await self._form(request)
        if form is None:
            return self.refusal(request, 413, "That form is too large.")
        if not auth.csrf_valid(request.session, form.get("csrf")):
            return self.refusal(request, 403, "This form has expired. Reload it and sign in.")
        email = str(form.get("email") or "").strip().lower()[:320]
        password = str(form.get("password") or "")
        target = auth.local_next(str(form.get("next") or ""))
        ip = request.client.host if request.client else "unknown"
        outcome = await run_in_threadpool(auth.sign_in, self.rt, email, password, ip)
        if outcome is None or isinstance(outcome, auth.Limited):
            status, error = (401, auth.WRONG) if outcome is None else (429, _limited(outcome))
            log.info("admin sign-in refused", extra={"event": "admin_signin", "status": status})
            values = {"next": target, "error": error, "email": email}
            return self.render(request, "login.html.j2", values, status)
        auth.begin(self.rt, request.session, outcome)
        log.info("admin %s signed in", outcome.email, extra={"event": "admin_signin"})
        return RedirectResponse(target, 303)

    async def logout(self, request: Request) -> Response:
        form = await self._form(request)
        admin = await run_in_threadpool(auth.signed_in, self.rt, request.session)
        if form is None or admin is None or not auth.csrf_valid(request.session, form.get("csrf")):
            return self.refusal(request, 403, "This form has expired. Nothing was changed.")
        await run_in_threadpool(auth.sign_out, self.rt, request.session, admin)
        request.session["flash"] = {"text": "You are signed out.", "error": False}
        return RedirectResponse("/admin/login", 303)

    def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in self.files:
            return Response("not found\n", status_code=404, media_type="text/plain")
        headers = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}
        return Response(self.files[name], media_type=STATIC[name], headers=headers)


def _limited(outcome: auth.Limited) -> str:
    minutes = f"{outcome.minutes} minute{'s' if outcome.minutes != 1 else ''}"
    return f"Too many sign-in attempts. Try again in {minutes}."
