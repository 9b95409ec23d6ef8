"""Mail out and the clocks: the outbox (Deliveries), Deadlines, escalations and their steps."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gateway.storage.models.base import Base, Id

JOB = "sr_id IS NULL AND escalation_id IS NULL AND lot_id IS NULL"


class Delivery(Base):
    """The outbox: one row per outgoing mail, written in the transaction that decided it."""

    __tablename__ = "deliveries"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    sr_id: Mapped[int | None] = mapped_column(ForeignKey("service_requests.id"), index=True)
    raw_mail_id: Mapped[int | None] = mapped_column(ForeignKey("raw_mails.id"))
    template: Mapped[str] = mapped_column(String(64))  # <subject>_<event>
    audience: Mapped[str] = mapped_column(String(16))  # customer | soc
    language: Mapped[str] = mapped_column(String(2))
    recipient: Mapped[str] = mapped_column(String(320))
    context: Mapped[dict[str, Any]] = mapped_column(JSON)
    message_id: Mapped[str] = mapped_column(String(998), unique=True)
    in_reply_to: Mapped[str | None] = mapped_column(String(998))
    references: Mapped[str] = mapped_column(Text, default="")
    auto_submitted: Mapped[str] = mapped_column(String(20))  # auto-replied | auto-generated
    queue: Mapped[str] = mapped_column(String(16), default="mail")
    status: Mapped[str] = mapped_column(String(16))  # pending | sending | sent | failed | cancelled
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    enqueued_at: Mapped[datetime | None]
    claimed_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
    # A bulletin's own header fields (List-Id, List-Unsubscribe …, RFC 2369, RFC 8058) and its
    # VERP envelope sender (R4.4); None: the gateway's address, and only the usual headers.
    headers: Mapped[dict[str, str] | None] = mapped_column(JSON)
    mail_from: Mapped[str | None] = mapped_column(String(320))
    __table_args__ = (
        Index("ix_deliveries_status_next", "status", "next_attempt_at"),
        Index("ix_deliveries_recipient_template", "recipient", "template", "created_at"),
        # counting a recipient's automatic replies of the last day (R6.1) is an index range
        Index("ix_deliveries_recipient_auto", "recipient", "auto_submitted", "created_at"),
    )


class Deadline(Base):
    """One running clock (R3.3): a target on an SR, an escalation's Director step, a daily job.

    `next_at` is when the clock must look at it next (its warning, then its due time); NULL once
    nothing more is to be done. The clock reads only this indexed column.
    """

    __tablename__ = "deadlines"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    sr_id: Mapped[int | None] = mapped_column(ForeignKey("service_requests.id"), index=True)
    escalation_id: Mapped[int | None] = mapped_column(ForeignKey("escalations.id"))
    # SecureHands: the session (acceptance, query) or the lot of units (expiry) it is about
    session_id: Mapped[int | None] = mapped_column(
        ForeignKey("securehands_sessions.id"), index=True
    )
    lot_id: Mapped[int | None] = mapped_column(ForeignKey("unit_lots.id"))
    kind: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[datetime]
    due_at: Mapped[datetime]
    warn_at: Mapped[datetime | None]
    warned_at: Mapped[datetime | None]
    breached_at: Mapped[datetime | None]
    met_at: Mapped[datetime | None]
    next_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    __table_args__ = (
        Index("ix_deadlines_next_at", "next_at"),
        # one row per daily job (a Deadline of no SR, no escalation and no lot of units)
        Index(
            "uq_deadlines_job",
            "kind",
            unique=True,
            sqlite_where=text(JOB),
            postgresql_where=text(JOB),
        ),
    )


class Escalation(Base):
    """§3.5.5: an escalation of an SR, to Duty Management and, if it stays open, to Directors."""

    __tablename__ = "escalations"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    sr_id: Mapped[int] = mapped_column(ForeignKey("service_requests.id"), index=True)
    source: Mapped[str] = mapped_column(String(16))  # customer | soc
    requested_by: Mapped[str] = mapped_column(String(320))
    reason: Mapped[str] = mapped_column(Text, default="")
    level: Mapped[str] = mapped_column(String(24))  # duty_management | director
    opened_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    steps: Mapped[list[EscalationStep]] = relationship(order_by="EscalationStep.id")


class EscalationStep(Base):
    """What happened in an escalation, for later analysis (§3.5.5: "tracked centrally")."""

    __tablename__ = "escalation_steps"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    escalation_id: Mapped[int] = mapped_column(ForeignKey("escalations.id"), index=True)
    at: Mapped[datetime]
    step: Mapped[str] = mapped_column(String(40))
    detail: Mapped[str] = mapped_column(Text, default="")
