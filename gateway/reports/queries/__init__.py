"""The reports' statements (one module per report), and what they share: the period's SRs
(`Cohort`), durations computed by the database (`Seconds`), customers and their contacts.

Durations are computed by the database, so that 100,000 SRs cost one number per SR, not
several parsed timestamps each (bench/reports.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Float, func, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from gateway.storage.tables import CONTACTS, CUSTOMERS, REQUESTS


class Seconds(FunctionElement[float]):
    """Seconds from `earlier` to `later`: Seconds(later, earlier)."""

    type = Float()
    inherit_cache = True
    name = "seconds_between"


@compiles(Seconds, "sqlite")
def _seconds_sqlite(element: Seconds, compiler: SQLCompiler, **kw: Any) -> str:
    later, earlier = (compiler.process(c, **kw) for c in element.clauses)
    return f"((julianday({later}) - julianday({earlier})) * 86400.0)"


@compiles(Seconds, "postgresql")
def _seconds_postgresql(element: Seconds, compiler: SQLCompiler, **kw: Any) -> str:
    later, earlier = (compiler.process(c, **kw) for c in element.clauses)
    return f"CAST(EXTRACT(EPOCH FROM ({later} - {earlier})) AS DOUBLE PRECISION)"


@dataclass(frozen=True)
class Cohort:
    """The SRs a report is about: opened from `start` to before `end`, known at `as_of`.

    `ids` bounds their ids (`id_range`): SRs are numbered as they are opened, so the period's
    SRs lie in one stretch of the table and of every table appended with them (Deadlines,
    request_events), which the databases then read in order instead of one by one.
    """

    start: datetime
    end: datetime
    as_of: datetime
    customer_id: int | None = None
    ids: tuple[int, int] = (0, 0)

    def where(self) -> list[ColumnElement[bool]]:
        opened = REQUESTS.c.created_at
        conditions = [
            REQUESTS.c.id.between(*self.ids),
            opened >= self.start,
            opened < self.end,
            opened <= self.as_of,
        ]
        if self.customer_id is not None:
            conditions.append(REQUESTS.c.customer_id == self.customer_id)
        return conditions


def cohort(
    conn: Connection, start: datetime, end: datetime, as_of: datetime, customer_id: int | None
) -> Cohort:
    """The cohort with its id bounds: the lowest id opened from `start` on and the highest
    opened before `end`. Every SR of the period lies between them, whatever order ids and
    instants were given in; (0, 0) when there is none."""
    opened = REQUESTS.c.created_at
    low = conn.scalar(select(func.min(REQUESTS.c.id)).where(opened >= start))
    high = conn.scalar(select(func.max(REQUESTS.c.id)).where(opened < end))
    ids = (int(low), int(high)) if low is not None and high is not None else (0, 0)
    return Cohort(start, end, as_of, customer_id, ids)


def customer_names(conn: Connection) -> dict[int, str]:
    return {r.id: r.name for r in conn.execute(select(CUSTOMERS.c.id, CUSTOMERS.c.name))}


@dataclass(frozen=True)
class CustomerRef:
    id: int
    name: str
    timezone: str  # the contracting office's (§1.3)


_CUSTOMER = select(CUSTOMERS.c.id, CUSTOMERS.c.name, CUSTOMERS.c.timezone)


def customer_named(conn: Connection, name: str) -> CustomerRef | None:
    row = conn.execute(_CUSTOMER.where(CUSTOMERS.c.name == name)).first()
    return CustomerRef(*row) if row else None


def customers_with_roles(conn: Connection, roles: tuple[str, ...]) -> list[CustomerRef]:
    """The customers with a current contact in one of `roles`, by name."""
    holders = select(CONTACTS.c.customer_id).where(
        CONTACTS.c.role.in_(roles), CONTACTS.c.removed_at.is_(None)
    )
    rows = conn.execute(_CUSTOMER.where(CUSTOMERS.c.id.in_(holders)).order_by(CUSTOMERS.c.name))
    return [CustomerRef(*row) for row in rows]


@dataclass(frozen=True)
class Recipient:
    address: str
    name: str
    role: str


def contacts_in_roles(
    conn: Connection, customer_id: int, roles: tuple[str, ...]
) -> list[Recipient]:
    """The customer's current contacts who hold one of `roles`, in that order."""
    rows = conn.execute(
        select(CONTACTS.c.email, CONTACTS.c.name, CONTACTS.c.role)
        .where(
            CONTACTS.c.customer_id == customer_id,
            CONTACTS.c.role.in_(roles),
            CONTACTS.c.removed_at.is_(None),
        )
        .order_by(CONTACTS.c.email)
    )
    found = [Recipient(r.email, r.name, r.role) for r in rows]
    return sorted(found, key=lambda r: roles.index(r.role))
