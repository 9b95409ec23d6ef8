"""R1.9: is the product a mail names covered by a current, valid entitlement (§3.1, §2.2)?"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Connection, bindparam, select

from gateway.core.values import columns
from gateway.storage.tables import ENTITLEMENTS, PRODUCTS

_OF_CUSTOMER = (
    select(
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


@dataclass(frozen=True)
class Coverage:
    """What the acknowledgement says about the product the mail names."""

    status: str  # covered | end_of_support | expired | not_yet_valid | not_covered | unnamed
    product: str = ""
    serial: str = ""
    valid_to: str = ""
    end_of_support: str = ""
    in_production: bool = True

    def as_context(self) -> dict[str, Any]:
        return columns(self)


def check(conn: Connection, customer_id: int, text: str, today: date) -> Coverage:
    """Find the product named by serial or name in `text`, then judge its entitlement on `today`."""
    rows = conn.execute(_OF_CUSTOMER, {"customer_id": customer_id}).all()
    by_serial = [r for r in rows if r.serial and _mentions(text, r.serial)]
    named = by_serial or [r for r in rows if _mentions(text, r.product)]
    if named:
        return _judge(max(named, key=lambda r: r.valid_to), today)
    for name in conn.scalars(_PRODUCT_NAMES):
        if _mentions(text, name):
            return Coverage("not_covered", product=name)
    return Coverage("unnamed")


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
