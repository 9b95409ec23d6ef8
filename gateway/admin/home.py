"""The admin web's first page: what waits for an admin, counted."""

from __future__ import annotations

from sqlalchemy import func, select

from gateway.admin.views import Shown, Spec, Visit, page
from gateway.core.vocabulary import StoredStatus
from gateway.storage.models import Bulletin, Delivery, Escalation, StoredMail, SubscriptionRequest


def home(visit: Visit) -> Shown:
    counts = {
        "review": select(func.count(StoredMail.id)).where(StoredMail.status == StoredStatus.review),
        "quarantined": select(func.count(StoredMail.id)).where(
            StoredMail.status == StoredStatus.quarantined
        ),
        "requests": select(func.count(SubscriptionRequest.id)).where(
            SubscriptionRequest.state == "pending"
        ),
        "escalations": select(func.count(Escalation.id)).where(Escalation.closed_at.is_(None)),
        "failed": select(func.count(Delivery.id)).where(Delivery.status == "failed"),
        "publishing": select(func.count(Bulletin.id)).where(Bulletin.state == "publishing"),
    }
    with visit.rt.sessions.begin() as session:
        figures = {name: session.scalar(query) or 0 for name, query in counts.items()}
    return Shown("home.html.j2", {"figures": figures})


ROUTES: tuple[Spec, ...] = (page("/", home),)
