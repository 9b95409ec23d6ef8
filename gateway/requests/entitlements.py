"""R1.9: is the product a mail names covered by a current, valid entitlement (§3.1, §2.2)?
R4.2: the same matching finds the products a subscription request names."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from sqlalchemy import Connection, bindparam, select

from gateway.core.values import columns
from gateway.storage.tables import ENTITLEMENTS, PRODUCTS

_OF_CUSTOMER = (
    select(
        PRODUCTS.c.id.label("product_id"),
        PRODUCTS.c.name.label("product"),
        ENTITLEMENTS.c.serial,
        ENTITLEMENTS.c.valid_from,
        ENTITLEMENTS.c.valid_to,
        ENTITLEMENTS.c.in_production,
        ENTITLEMENTS.c.end_of_support,
    )
    .join(PRODUCTS, PRODUCTS.c.id == ENTITLEMENTS.c.product_id)
    .where(ENTITLEMENTS.c.customer_id == bindparam("customer_id"))
)
_PRODUCT_NAMES = select(PRODUCTS.c.name)
_PRODUCTS = select(PRODUCTS.c.id, PRODUCTS.c.name)


@dataclass(frozen=True)
class Coverage:
    """What the acknowledgement says about the product the mail names."""

    status: str  # covered | end_of_support | expired | not_yet_valid | not_covered | unnamed
    product: str = ""
    serial: str = ""
    valid_to: str = ""
    end_of_support: str = ""
    in_production: bool = True
    # the other products the mail names, each judged the same way (R1.9: the acknowledgement
    # says of each one that is not covered)
    also: tuple[Coverage, ...] = ()

    def as_context(self) -> dict[str, Any]:
        found = columns(self)
        found["also"] = [other.as_context() for other in self.also]
        return found


def check(conn: Connection, customer_id: int, text: str, today: date) -> Coverage:
    """The products named by serial or name in `text`, each judged on `today`: the first the one
    a serial names (else a name), of the entitlement valid longest; the rest in `also`."""
    rows = conn.execute(_OF_CUSTOMER, {"customer_id": customer_id}).all()
    by_serial = [r for r in rows if r.serial and _mentions(text, r.serial)]
    serials = {r.product_id for r in by_serial}
    # a product named only by its name: the entitlement of it valid longest
    by_name: dict[int, Any] = {}
    for row in sorted(rows, key=lambda r: r.valid_to):
        if row.product_id not in serials and _mentions(text, row.product):
            by_name[row.product_id] = row
    named = sorted(by_serial, key=lambda r: r.valid_to, reverse=True)
    named += sorted(by_name.values(), key=lambda r: r.valid_to, reverse=True)
    held = {r.product for r in rows}
    foreign = [
        Coverage("not_covered", product=name)
        for name in conn.scalars(_PRODUCT_NAMES)
        if name not in held and _mentions(text, name)
    ]
    judged = [_judge(row, today) for row in named] + foreign
    if not judged:
        return Coverage("unnamed")
    first, *rest = judged
    return replace(first, also=tuple(rest))


@dataclass(frozen=True)
class Judged:
    """A product a subscription request concerns, and its entitlement today."""

    product_id: int
    coverage: Coverage


def judge_named(
    conn: Connection, customer_id: int, text: str, today: date
) -> tuple[list[Judged], bool]:
    """R4.2: every product `text` names (by serial or by name, as `check` finds one), each
    judged on its latest entitlement; a named product the customer does not have is
    `not_covered`. None named: all the customer's products, and False."""
    rows = conn.execute(_OF_CUSTOMER, {"customer_id": customer_id}).all()
    named = [
        r for r in rows if (r.serial and _mentions(text, r.serial)) or _mentions(text, r.product)
    ]
    latest: dict[int, Any] = {}
    for row in sorted(named or rows, key=lambda r: r.valid_to):
        latest[row.product_id] = row
    judged = [Judged(pid, _judge(row, today)) for pid, row in latest.items()]
    others = [
        Judged(pid, Coverage("not_covered", product=name))
        for pid, name in conn.execute(_PRODUCTS)
        if pid not in latest and _mentions(text, name)
    ]
    everything = sorted(judged + others, key=lambda j: j.coverage.product)
    return everything, bool(named or others)


def _judge(row: Any, today: date) -> Coverage:
    eos = row.end_of_support
    if today < row.valid_from:
        status = "not_yet_valid"
    elif today > row.valid_to:
        status = "expired"
    elif eos is not None and today > eos:
        status = "end_of_support"  # §2.2: upgrade recommended, commercially reasonable efforts
    else:
        status = "covered"
    return Coverage(
        status,
        product=row.product,
        serial=row.serial or "",
        valid_to=row.valid_to.isoformat(),
        end_of_support=eos.isoformat() if eos else "",
        in_production=row.in_production,
    )


def _mentions(text: str, term: str) -> bool:
    term = term.strip()
    if len(term) < 3:
        return False
    return re.search(rf"(?<![\w-]){re.escape(term)}(?![\w-])", text, re.IGNORECASE) is not None
