"""The Support Update Service's subscriptions per product, their audit trail and the requests by
mail (R4.2, §3.8), managed as `gateway subscriptions …` does (gateway/sus/admin.py, approvals):
every change in the audit trail by the admin's address, how `web`."""

from __future__ import annotations

from urllib.parse import urlencode

from sqlalchemy import func, select

from gateway.admin.views import Done, Shown, Spec, Visit, action, page
from gateway.storage.db import transaction
from gateway.storage.models import Product, Subscription
from gateway.sus import admin, approvals, listings
from gateway.sus.requests import RequestError
from gateway.sus.vocabulary import ALL_KINDS, Change, How


def subscriptions_page(visit: Visit) -> Shown:
    with visit.rt.sessions.begin() as session:
        counted = session.execute(
            select(Product.name, func.count(Subscription.id))
            .outerjoin(Subscription, Subscription.product_id == Product.id)
            .group_by(Product.name)
            .order_by(Product.name)
        ).all()
        products = [name for name, _ in counted]
        busy = [name for name, subscribed in counted if subscribed] or products
        wanted = visit.query.get("product", "")
        product = wanted if wanted in products else (busy[0] if busy else "")
        rows = listings.subscriptions(session, product) if product else []
        trail = listings.history(session, product=product) if product else []
        pending = [r for r in listings.requests(session) if product in r["products"].split(", ")]
    values = {
        "products": [(name, subscribed) for name, subscribed in counted],
        "product": product,
        "rows": rows,
        "trail": list(reversed(trail)),  # newest first on a page
        "pending": pending,
        "kinds": ALL_KINDS,
    }
    return Shown("subscriptions.html.j2", values)


def add(visit: Visit) -> Done:
    email, product = visit.form.get("email", ""), visit.form.get("product", "")
    kinds = ",".join(visit.checked) or None
    with visit.rt.sessions.begin() as session:
        found, changed = admin.add(session, email, product, kinds, _change(visit))
        said = f"{found.contact.email} {'subscribed' if changed else 'already subscribed'}"
        said += f": {product} ({', '.join(found.kinds)})"
    return Done(_back(product), said)


def remove(visit: Visit) -> Done:
    email, product = visit.form.get("email", ""), visit.form.get("product", "")
    with visit.rt.sessions.begin() as session:
        changed = admin.remove(session, email, product, _change(visit))
    return Done(_back(product), f"{email} {'unsubscribed' if changed else 'was not subscribed'}")


def resume(visit: Visit) -> Done:
    email, product = visit.form.get("email", ""), visit.form.get("product", "")
    with visit.rt.sessions.begin() as session:
        admin.resume(session, email, product, _change(visit))
    return Done(_back(product), f"{email} resumed: {product}")


def approve(visit: Visit) -> Done:
    return _decide(visit, True, "")


def deny(visit: Visit) -> Done:
    reason = visit.form.get("reason", "").strip()
    if not reason:
        raise RequestError("a denial must say why: the contact is told")
    return _decide(visit, False, reason)


def _decide(visit: Visit, approving: bool, reason: str) -> Done:
    rt, request_id = visit.rt, visit.path["request_id"]
    with transaction(rt.sessions) as conn:
        done, mails = approvals.decide(conn, rt, request_id, approving, _change(visit), reason)
    rt.outbox.enqueue(mails)  # after the commit; the sweep sends it if no broker takes it
    return Done(_back(visit.form.get("product", "")), done)


def _change(visit: Visit) -> Change:
    return Change(visit.admin, How.web, visit.rt.now())


def _back(product: str) -> str:
    return "/subscriptions?" + urlencode({"product": product}) if product else "/subscriptions"


ASKED = "/subscriptions/requests/{request_id:int}"
BACK = "/subscriptions?product={product}"  # a refusal is said on the product's page
ROUTES: tuple[Spec, ...] = (
    page("/subscriptions", subscriptions_page),
    action("/subscriptions/add", add, BACK, "subscriptions add"),
    action("/subscriptions/remove", remove, BACK, "subscriptions remove"),
    action("/subscriptions/resume", resume, BACK, "subscriptions resume"),
    action(f"{ASKED}/approve", approve, BACK, "subscriptions approve"),
    action(f"{ASKED}/deny", deny, BACK, "subscriptions deny"),
)
