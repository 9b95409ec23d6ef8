"""Oversight mails: the TAM's notices (§3.10, R2.5) and the team leaders' progress review (§3.5.4).

TAM: an SR at Priority 1 or 2, or asked for at 1 or 2, reaches the customer's TAM at once (also
when the SOC raises it later); the others come in one daily digest per TAM. Progress review: every
day, each SOC team leader gets every open SR with its age, priority, last update and targets.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, func, select, update

from gateway.core.runtime import Runtime
from gateway.core.vocabulary import OPEN_STATES, Audience
from gateway.directory.queries import Person, contacts_with_role, staff_with_role
from gateway.outbound.contexts.oversight import (
    DigestLine,
    ProgressReview,
    ReviewLine,
    TamDigest,
    TamNotice,
)
from gateway.outbound.notices import alert
from gateway.storage.records import RequestRow
from gateway.storage.tables import DEADLINES, DELIVERIES, ESCALATIONS, REQUESTS

Deliveries = list[tuple[int, str]]
REVIEW_LIMIT = 500  # SRs listed in one review mail; the rest are counted


def notify_tam(conn: Connection, rt: Runtime, sr: RequestRow, now: datetime) -> Deliveries:
    """The customer's TAM hears of the SR now, at P1/P2 (once). A digest that listed it before,
    at a lower priority, does not count: the TAM learns that it became urgent."""
    told = select(DELIVERIES.c.id).where(
        DELIVERIES.c.sr_id == sr.id, DELIVERIES.c.template == "tam_notice"
    )
    tams = contacts_with_role(conn, sr.customer_id, "tam")
    if not tams or conn.scalar(told.limit(1)) is not None:
        return []
    conn.execute(
        update(REQUESTS)
        .where(REQUESTS.c.id == sr.id, REQUESTS.c.tam_notified_at.is_(None))
        .values(tam_notified_at=now)
    )
    return [
        alert(
            conn,
            rt,
            template="tam_notice",
            recipient=tam.address,
            context=TamNotice(
                sr_id=sr.public_id,
                title=sr.title,
                customer=sr.customer,
                priority=sr.priority,
                requested_priority=sr.requested_priority,
                requester=sr.requester or "",
                type=sr.type,
                name=tam.name,
            ),
            now=now,
            audience=Audience.staff,
            sr_id=sr.id,
            label=sr.public_id,
        )
        for tam in tams
    ]


def tam_digest(conn: Connection, rt: Runtime, now: datetime) -> Deliveries:
    """The daily digest: each TAM gets the customer's SRs not yet notified (P3 and P4)."""
    pending = conn.execute(
        select(
            REQUESTS.c.id,
            REQUESTS.c.public_id,
            REQUESTS.c.title,
            REQUESTS.c.priority,
            REQUESTS.c.state,
            REQUESTS.c.customer_id,
            REQUESTS.c.created_at,
        )
        .where(REQUESTS.c.tam_notified_at.is_(None), REQUESTS.c.created_at <= now)
        .order_by(REQUESTS.c.customer_id, REQUESTS.c.created_at)
    ).all()
    deliveries: Deliveries = []
    by_customer: dict[int, list[Any]] = {}
    for row in pending:
        by_customer.setdefault(row.customer_id, []).append(row)
    for customer_id, rows in by_customer.items():
        tams = contacts_with_role(conn, customer_id, "tam")
        if not tams:
            continue
        listed = [
            DigestLine(
                sr_id=r.public_id,
                title=r.title,
                priority=r.priority,
                state=r.state,
                opened=f"{r.created_at:%Y-%m-%d %H:%M} UTC",
            )
            for r in rows
        ]
        for tam in tams:
            deliveries.append(
                alert(
                    conn,
                    rt,
                    template="tam_digest",
                    recipient=tam.address,
                    context=TamDigest(name=tam.name, requests=listed, day=f"{now:%Y-%m-%d}"),
                    now=now,
                    audience=Audience.staff,
                    label="tam-digest",
                )
            )
        conn.execute(
            update(REQUESTS)
            .where(REQUESTS.c.id.in_([r.id for r in rows]))
            .values(tam_notified_at=now)
        )
    return deliveries


def progress_review(conn: Connection, rt: Runtime, now: datetime) -> Deliveries:
    """§3.5.4: the team leaders' review of every open SR (to the SOC queue if there are none)."""
    rows = conn.execute(
        select(
            REQUESTS.c.id,
            REQUESTS.c.public_id,
            REQUESTS.c.title,
            REQUESTS.c.priority,
            REQUESTS.c.state,
            REQUESTS.c.created_at,
            REQUESTS.c.last_soc_update_at,
            REQUESTS.c.assigned_to,
        )
        .where(REQUESTS.c.state.in_(OPEN_STATES))
        .order_by(REQUESTS.c.priority, REQUESTS.c.created_at)
        .limit(REVIEW_LIMIT)
    ).all()
    total = (
        conn.scalar(
            select(func.count()).select_from(REQUESTS).where(REQUESTS.c.state.in_(OPEN_STATES))
        )
        or 0
    )
    targets = _targets(conn, [r.id for r in rows], now)
    escalated = dict(
        conn.execute(
            select(ESCALATIONS.c.sr_id, ESCALATIONS.c.level).where(
                ESCALATIONS.c.sr_id.in_([r.id for r in rows]), ESCALATIONS.c.closed_at.is_(None)
            )
        ).all()
    )
    listed = [
        ReviewLine(
            sr_id=r.public_id,
            title=r.title,
            priority=r.priority,
            state=r.state,
            age=_age(now - r.created_at),
            assigned_to=r.assigned_to or "",
            last_update=_age(now - r.last_soc_update_at) + " ago"
            if r.last_soc_update_at
            else "none yet",
            targets=targets.get(r.id, []),
            escalation=escalated.get(r.id, ""),
        )
        for r in rows
    ]
    leaders = staff_with_role(conn, "team_leader") or [Person(rt.settings.soc_queue_address, "")]
    return [
        alert(
            conn,
            rt,
            template="progress_review",
            recipient=leader.address,
            context=ProgressReview(
                name=leader.name,
                day=f"{now:%Y-%m-%d}",
                requests=listed,
                total=total,
                not_listed=max(0, total - len(listed)),
            ),
            now=now,
            label="progress-review",
        )
        for leader in leaders
    ]


def _targets(conn: Connection, sr_ids: list[int], now: datetime) -> dict[int, list[str]]:
    rows = conn.execute(
        select(
            DEADLINES.c.sr_id,
            DEADLINES.c.kind,
            DEADLINES.c.due_at,
            DEADLINES.c.met_at,
            DEADLINES.c.breached_at,
        )
        .where(DEADLINES.c.sr_id.in_(sr_ids), DEADLINES.c.kind != "update")
        .order_by(DEADLINES.c.id)
    )
    states: dict[int, list[str]] = {}
    for row in rows:
        name = row.kind.replace("_", " ")
        if row.met_at is not None:
            text = f"{name}: met"
        elif row.breached_at is not None or row.due_at <= now:
            text = f"{name}: MISSED ({_age(now - row.due_at)} over)"
        else:
            text = f"{name}: due in {_age(row.due_at - now)}"
        states.setdefault(row.sr_id, []).append(text)
    return states


def _age(delta: timedelta) -> str:
    minutes = max(0, int(delta.total_seconds() // 60))
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    return f"{days}d {hours}h" if days else f"{hours}h {minutes:02d}m"


def next_daily(at: str, timezone: str, after: datetime) -> datetime:
    """The next `at` (HH:MM) in `timezone`, strictly after `after`."""
    zone = ZoneInfo(timezone)
    hour, minute = (int(part) for part in at.split(":"))
    local = after.astimezone(zone)
    candidate = datetime.combine(local.date(), time(hour, minute), zone)
    if candidate <= local:
        candidate = datetime.combine(local.date() + timedelta(days=1), time(hour, minute), zone)
    return candidate
