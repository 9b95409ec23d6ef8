"""Bulletins (§3.8, R4.3) as `gateway bulletins …` handles them (gateway/sus/bulletins.py):
written in Markdown with a preview of the HTML their mail carries, looked at as a subscriber
gets them, published, and followed while their mails go out."""

from __future__ import annotations

import json

from sqlalchemy import select

from gateway.admin.views import Document, Done, Result, Shown, Spec, Visit, action, missing, page
from gateway.outbound.outbox import in_process
from gateway.storage.models import Product
from gateway.sus import bulletins
from gateway.sus.bulletins import MAX_BODY, BulletinError, Draft
from gateway.sus.vocabulary import ALL_KINDS, Severity

FIELDS = ("product", "kind", "severity", "title", "url", "body")
# The mail's own HTML, in a frame of the bulletin's page: its inline styles, nothing else.
MAIL_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "frame-ancestors 'self'; base-uri 'none'; form-action 'none'",
    "X-Frame-Options": "SAMEORIGIN",
}


def bulletins_list(visit: Visit) -> Shown:
    with visit.rt.sessions.begin() as session:
        rows = bulletins.listing(session)
    return Shown("bulletins_list.html.j2", {"rows": rows})


def bulletin_new(visit: Visit) -> Shown:
    return _form(visit, {"kind": "patch", "severity": Severity.medium})


def create(visit: Visit) -> Result:
    """The form's two buttons: Preview (shown again with the HTML), or Save as a draft."""
    written = {name: visit.form.get(name, "") for name in FIELDS}
    if visit.form.get("do") == "preview":
        return _form(visit, written, preview=visit.renderings.markdown(written["body"][:MAX_BODY]))
    draft = Draft(
        written["product"],
        written["kind"],
        written["title"],
        written["body"].replace("\r\n", "\n"),
        written["severity"],
        written["url"].strip() or None,
    )
    try:
        with visit.rt.sessions.begin() as session:
            bulletin_id = bulletins.create(session, draft, visit.admin, visit.rt.now()).id
    except BulletinError as exc:  # shown with what was written, so that nothing is lost
        return _form(visit, written, error=str(exc), status=400)
    return Done(f"/bulletins/{bulletin_id}", f"Bulletin {bulletin_id} saved as a draft.")


def preview(visit: Visit) -> Document:
    """The live preview's HTML: the Markdown as the mail's HTML part will carry it."""
    html = visit.renderings.markdown(visit.form.get("body", "")[:MAX_BODY])
    return Document(html, "text/html; charset=utf-8")


def bulletin_show(visit: Visit) -> Result:
    bulletin_id = visit.path["bulletin_id"]
    try:
        figures = bulletins.status(visit.rt, bulletin_id)
        mail = visit.renderings.bulletin(visit.rt, bulletin_id)
    except BulletinError:
        return missing(f"bulletin {bulletin_id}")
    # still going out: the page follows it (the script, or a refresh without it)
    going = figures["state"] == "publishing" or bool(figures["waiting"])
    values = {"b": figures, "subject": mail.subject, "text": mail.text, "going": going}
    return Shown("bulletin_show.html.j2", values)


def bulletin_mail(visit: Visit) -> Result:
    try:
        mail = visit.renderings.bulletin(visit.rt, visit.path["bulletin_id"])
    except BulletinError:
        return missing(f"bulletin {visit.path['bulletin_id']}")
    return Document(mail.html, "text/html; charset=utf-8", MAIL_HEADERS)


def bulletin_status(visit: Visit) -> Result:
    """The figures the page's progress follows (`bulletins status --json`)."""
    try:
        figures = bulletins.status(visit.rt, visit.path["bulletin_id"])
    except BulletinError:
        return missing(f"bulletin {visit.path['bulletin_id']}")
    return Document(json.dumps(figures), "application/json")


def publish(visit: Visit) -> Done:
    rt, bulletin_id = visit.rt, visit.path["bulletin_id"]
    hand_over = not in_process(rt.outbox.broker)  # else this gateway's sweep takes it up
    state = bulletins.publish(rt, bulletin_id, visit.admin, hand_over=hand_over)
    return Done(f"/bulletins/{bulletin_id}", f"Bulletin {bulletin_id} {state}.")


def _form(
    visit: Visit, written: dict[str, str], *, preview: str = "", error: str = "", status: int = 200
) -> Shown:
    with visit.rt.sessions.begin() as session:
        products = list(session.scalars(select(Product.name).order_by(Product.name)))
    values = {
        "written": {name: written.get(name, "") for name in FIELDS},
        "products": products,
        "kinds": ALL_KINDS,
        "severities": tuple(Severity),
        "preview": preview,
        "error": error,
    }
    return Shown("bulletin_new.html.j2", values, status)


ONE = "/bulletins/{bulletin_id:int}"
ROUTES: tuple[Spec, ...] = (
    page("/bulletins", bulletins_list),
    page("/bulletins/new", bulletin_new),
    action("/bulletins/new", create, "/bulletins/new", "bulletins create"),
    action("/bulletins/preview", preview, "/bulletins/new", "bulletins preview"),
    page(ONE, bulletin_show),
    page(f"{ONE}/mail", bulletin_mail),
    page(f"{ONE}/status", bulletin_status),
    action(f"{ONE}/publish", publish, "/bulletins/{bulletin_id}", "bulletins publish"),
)
