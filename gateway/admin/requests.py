"""Service Requests and their escalations as `gateway requests | escalations` show them: search
by SR ID, customer and state; one SR with its messages, deliveries and deadlines."""

from __future__ import annotations

from gateway.admin.views import Result, Shown, Spec, Visit, missing, page
from gateway.core.vocabulary import State
from gateway.directory import listings as directory_listings
from gateway.requests import listings
from gateway.sla import listings as escalation_listings

STATES = tuple(State)


def requests_list(visit: Visit) -> Shown:
    query = visit.query
    wanted = {
        "sr_id": query.get("sr_id", "").strip()[:40],
        "customer": query.get("customer", "").strip()[:200],
        "state": query.get("state", "") if query.get("state") in STATES else "",
    }
    with visit.rt.sessions.begin() as session:
        rows = listings.requests(
            session,
            state=wanted["state"] or None,
            customer=wanted["customer"] or None,
            sr_id=wanted["sr_id"] or None,
        )
        customers = [c["name"] for c in directory_listings.customers(session)]
    values = {"rows": rows, "wanted": wanted, "states": STATES, "customers": customers}
    return Shown("requests_list.html.j2", values)


def request_show(visit: Visit) -> Result:
    sr_id = str(visit.path["sr_id"])
    with visit.rt.sessions.begin() as session:
        shown = listings.request(session, sr_id)
        escalations = escalation_listings.escalations(session, sr_id=sr_id)
    if shown is None:
        return missing(f"Service Request {sr_id}")
    return Shown("request_show.html.j2", {"sr": shown, "escalations": escalations})


def escalations_list(visit: Visit) -> Shown:
    open_only = visit.query.get("open") == "1"
    with visit.rt.sessions.begin() as session:
        rows = escalation_listings.escalations(session, open_only=open_only)
    return Shown("escalations.html.j2", {"rows": rows, "open_only": open_only})


ROUTES: tuple[Spec, ...] = (
    page("/requests", requests_list),
    page("/requests/{sr_id}", request_show),
    page("/escalations", escalations_list),
)
