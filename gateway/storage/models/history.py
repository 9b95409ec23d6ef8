"""An SR's history as the reports read it: every change of state, and the indexes the reports
need on the tables the mail path writes (§3.5.5 analysis, §3.10 account reviews)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from gateway.storage.models.base import Base, Id
from gateway.storage.models.clocks import Delivery, Escalation
from gateway.storage.models.mail import ServiceRequest


class RequestEvent(Base):
    """One change of an SR's state, appended where it happens, never updated.

    The SR row keeps only its current state and `closed_at`; when it was resolved, and how long
    it spent waiting for the customer, can only be read from here. `from_state` is the state
    the change before it entered (None for the opening), so that each row is one stay in a
    state ending; `by` is the address of whoever changed it ("" when not known: the SRs older
    than this table have their opening and closing only, from `created_at` and `closed_at`).
    """

    __tablename__ = "request_events"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    sr_id: Mapped[int] = mapped_column(ForeignKey("service_requests.id"))
    at: Mapped[datetime]
    from_state: Mapped[str | None] = mapped_column(String(24))
    to_state: Mapped[str] = mapped_column(String(24))
    by: Mapped[str] = mapped_column(String(320), default="")
    __table_args__ = (Index("ix_request_events_sr_at", "sr_id", "at"),)


# The reports find the period's SRs and escalations by when they were opened, and count an SR's
# alerts by template; declared here, beside the table they serve, rather than in the mail path's
# models. (An index on customer and opening was tried and left out: SQLite's planner then
# skip-scanned it for reports of every customer, five times slower than reading by id.)
Index("ix_service_requests_created_at", ServiceRequest.created_at)
Index("ix_escalations_opened_at", Escalation.opened_at)
Index("ix_deliveries_template_sr", Delivery.template, Delivery.sr_id)
