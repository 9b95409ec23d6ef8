"""Outgoing mail as `gateway deliveries` shows it: the failed ones first, with their errors, and
sent again on an admin's word (gateway/outbound/retries.py)."""

from __future__ import annotations

from gateway.admin.views import Done, Shown, Spec, Visit, action, page
from gateway.outbound import listings
from gateway.outbound.retries import retry_failed
from gateway.storage.db import transaction

FAILED = "/deliveries?status=failed"
STATUSES = ("failed", "pending", "sending", "sent", "cancelled")


def deliveries_list(visit: Visit) -> Shown:
    status = visit.query.get("status", "failed")
    status = status if status in STATUSES else "failed"
    with visit.rt.sessions.begin() as session:
        rows = listings.deliveries(session, status=status)
    return Shown("deliveries.html.j2", {"rows": rows, "status": status, "statuses": STATUSES})


def retry(visit: Visit) -> Done:
    rt, delivery_id = visit.rt, visit.path["delivery_id"]
    with transaction(rt.sessions) as conn:
        again = retry_failed(conn, delivery_id, rt.now(), visit.admin)
    rt.outbox.enqueue([again])  # after the commit; the sweep sends it if no broker takes it
    return Done(FAILED, f"Delivery {delivery_id} is pending again.")


ROUTES: tuple[Spec, ...] = (
    page("/deliveries", deliveries_list),
    action(
        "/deliveries/{delivery_id:int}/retry",
        retry,
        "/deliveries?status=failed",
        "deliveries retry",
    ),
)
