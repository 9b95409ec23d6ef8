"""§3.5.5, R2.4: escalations: Duty Management alerted, Account and Service Delivery Managers
notified, the requester told; still open after 3 days (24 hours for P1): Director level.

Every escalation and each of its steps is stored, for later analysis.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, insert, select, update

from gateway.core.runtime import Runtime
from gateway.core.values import columns
from gateway.core.vocabulary import Audience
from gateway.directory.queries import contacts_with_role
from gateway.outbound.contexts.oversight import (
    AboutEscalation,
    EscalationDirector,
    EscalationNotice,
    EscalationOpened,
    EscalationRecorded,
)
from gateway.outbound.notices import alert, in_customer_thread, reply_language
from gateway.sla import service_levels
from gateway.storage.records import RequestRow, request_row
from gateway.storage.tables import ESCALATION_STEPS as STEPS
from gateway.storage.tables import ESCALATIONS

Deliveries = list[tuple[int, str]]
# Who hears of a new escalation, besides Duty Management and the requester (R2.4).
NOTIFIED_ROLES = (
    ("account_manager", "Account Manager"),
    ("service_delivery_manager", "Service Delivery Manager"),
)


def open_escalation(
    conn: Connection,
    rt: Runtime,
    sr: RequestRow,
    *,
    source: str,
    requested_by: str,
    reason: str,
    now: datetime,
    tell_requester: bool = True,
) -> Deliveries:
    """Open an escalation of `sr`, or, if one is open, record the new request on it.

    `tell_requester` is False when the requester had too many automatic replies (R6.1).
    """
    told = _tell_requester if tell_requester else _nobody
    current = open_of(conn, sr.id)
    if current is not None:
        _step(conn, current, now, "requested_again", f"{source}: {requested_by}: {reason}")
        return told(conn, rt, sr, current, now)
    escalation_id = int(
        conn.execute(
            insert(ESCALATIONS)
            .values(
                sr_id=sr.id,
                source=source,
                requested_by=requested_by,
                reason=reason[:2000],
                level="duty_management",
                opened_at=now,
                closed_at=None,
            )
            .returning(ESCALATIONS.c.id)
        ).scalar_one()
    )
    _step(conn, escalation_id, now, "opened", f"{source}: {requested_by}: {reason}")
    due = service_levels.arm(
        conn, rt.settings, sr, "escalation_director", now, now, escalation_id=escalation_id
    )
    context = EscalationOpened(
        **_context(sr, rt),
        reason=reason,
        requested_by=requested_by,
        source=source,
        director_at=_local(due, rt),
    )
    deliveries = [
        _mail(
            conn,
            rt,
            sr,
            "escalation_opened",
            Audience.soc,
            rt.settings.duty_management_address,
            context,
            now,
        )
    ]
    _step(conn, escalation_id, now, "duty_management_alerted", rt.settings.duty_management_address)
    for role, title in NOTIFIED_ROLES:
        for person in contacts_with_role(conn, sr.customer_id, role):
            notice = EscalationNotice(**columns(context), name=person.name, role=title)
            deliveries.append(
                _mail(
                    conn,
                    rt,
                    sr,
                    "escalation_notice",
                    Audience.staff,
                    person.address,
                    notice,
                    now,
                )
            )
            _step(conn, escalation_id, now, f"{role}_notified", person.address)
    return deliveries + told(conn, rt, sr, escalation_id, now)


def close_escalation(conn: Connection, sr_id: int, by: str, reason: str, now: datetime) -> bool:
    """De-escalate: the open escalation of the SR is closed, its Director clock stopped."""
    current = open_of(conn, sr_id)
    if current is None:
        return False
    conn.execute(update(ESCALATIONS).where(ESCALATIONS.c.id == current).values(closed_at=now))
    _step(conn, current, now, "closed", f"{by}: {reason}".strip(": "))
    service_levels.meet(conn, sr_id, "escalation_director", now)
    return True


def record_plan(conn: Connection, sr_id: int, by: str, now: datetime) -> bool:
    """§3.5.5: "the customer contact who requested escalation will be updated on the plan": the
    SOC's first answer to the customer after an escalation opened is its plan, stored as the
    step `plan_given` (once per escalation; not the answer in the mail that opened it)."""
    current = open_of(conn, sr_id)
    if current is None:
        return False
    opened_at = conn.scalar(select(ESCALATIONS.c.opened_at).where(ESCALATIONS.c.id == current))
    planned = conn.scalar(
        select(STEPS.c.id).where(STEPS.c.escalation_id == current, STEPS.c.step == "plan_given")
    )
    if planned is not None or opened_at is None or opened_at >= now:
        return False
    _step(conn, current, now, "plan_given", by)
    return True


def escalate_to_director(
    conn: Connection, rt: Runtime, escalation_id: int, now: datetime
) -> Deliveries:
    """The clock's step: an escalation still open after its time goes to Director level."""
    row = conn.execute(select(ESCALATIONS).where(ESCALATIONS.c.id == escalation_id)).one()
    if row.closed_at is not None:
        return []
    conn.execute(
        update(ESCALATIONS).where(ESCALATIONS.c.id == escalation_id).values(level="director")
    )
    sr = request_row(conn, row.sr_id)
    _step(conn, escalation_id, now, "director_escalated", rt.settings.director_address)
    context = EscalationDirector(
        **_context(sr, rt),
        reason=row.reason,
        requested_by=row.requested_by,
        opened_at=_local(row.opened_at, rt),
        source=row.source,
    )
    director = rt.settings.director_address
    return [_mail(conn, rt, sr, "escalation_director", Audience.soc, director, context, now)]


def open_of(conn: Connection, sr_id: int) -> int | None:
    return conn.scalar(
        select(ESCALATIONS.c.id).where(
            ESCALATIONS.c.sr_id == sr_id, ESCALATIONS.c.closed_at.is_(None)
        )
    )


def _nobody(
    conn: Connection, rt: Runtime, sr: RequestRow, escalation_id: int, now: datetime
) -> Deliveries:
    return []


def _tell_requester(
    conn: Connection, rt: Runtime, sr: RequestRow, escalation_id: int, now: datetime
) -> Deliveries:
    """The requesting contact is told the escalation is recorded and who handles it (R2.4)."""
    if not sr.requester:
        return []
    language = reply_language(sr.language, sr.calendar, now)
    context = EscalationRecorded(
        **_context(sr, rt),
        contact_name=sr.requester_name,
        outside_hours=language.outside_hours,
        wanted_language=language.wanted,
    )
    delivery = in_customer_thread(
        conn,
        rt,
        sr_id=sr.id,
        label=sr.public_id,
        template="escalation_recorded",
        recipient=sr.requester,
        context=context,
        now=now,
        language=language.code,
    )
    _step(conn, escalation_id, now, "requester_told", sr.requester)
    return [delivery]


def _mail(
    conn: Connection,
    rt: Runtime,
    sr: RequestRow,
    template: str,
    audience: Audience,
    recipient: str,
    context: EscalationOpened | EscalationNotice | EscalationDirector,
    now: datetime,
) -> tuple[int, str]:
    return alert(
        conn,
        rt,
        template=template,
        recipient=recipient,
        context=context,
        now=now,
        audience=audience,
        sr_id=sr.id,
        label=sr.public_id,
    )


def _step(conn: Connection, escalation_id: int, now: datetime, step: str, detail: str) -> None:
    conn.execute(
        insert(STEPS).values(escalation_id=escalation_id, at=now, step=step, detail=detail[:2000])
    )


def _context(sr: RequestRow, rt: Runtime) -> dict[str, Any]:
    """The fields of AboutEscalation (outbound/contexts/oversight.py) for this SR."""
    about = AboutEscalation(
        sr_id=sr.public_id,
        title=sr.title,
        priority=sr.priority,
        customer=sr.customer,
        requester=sr.requester or "",
        soc_phone=rt.settings.soc_phone,
        soc_address=rt.settings.gateway_address,
        duty_management=rt.settings.duty_management_address,
    )
    return columns(about)


def _local(instant: datetime, rt: Runtime) -> str:
    return f"{instant.astimezone(ZoneInfo(rt.settings.soc_timezone)):%Y-%m-%d %H:%M %Z}"
