"""R1.9: is the product a mail names covered by a current, valid entitlement (§3.1, §2.2)?"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from gateway.models import Entitlement, Product


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
        return asdict(self)


def check(session: Session, customer_id: int, text: str, today: date) -> Coverage:
    """Find the product named by serial or name in `text`, then judge its entitlement on `today`."""
    entitlements = list(
        session.scalars(
            select(Entitlement)
            .options(joinedload(Entitlement.product))
            .where(Entitlement.customer_id == customer_id)
        )
    )
    by_serial = [e for e in entitlements if e.serial and _mentions(text, e.serial)]
    by_name = [e for e in entitlements if _mentions(text, e.product.name)]
    named = by_serial or by_name
    if named:
        return _judge(max(named, key=lambda e: e.valid_to), today)
    for name in session.scalars(select(Product.name)):
        if _mentions(text, name):
            return Coverage("not_covered", product=name)
    return Coverage("unnamed")


def _judge(entitlement: Entitlement, today: date) -> Coverage:
    eos = entitlement.end_of_support
    if today < entitlement.valid_from:
        status = "not_yet_valid"
    elif today > entitlement.valid_to:
        status = "expired"
    elif eos is not None and today > eos:
        status = "end_of_support"  # §2.2: upgrade recommended, commercially reasonable efforts
    else:
        status = "covered"
    return Coverage(
        status,
        product=entitlement.product.name,
        serial=entitlement.serial or "",
        valid_to=entitlement.valid_to.isoformat(),
        end_of_support=eos.isoformat() if eos else "",
        in_production=entitlement.in_production,
    )


def _mentions(text: str, term: str) -> bool:
    term = term.strip()
    if len(term) < 3:
        return False
    return re.search(rf"(?<![\w-]){re.escape(term)}(?![\w-])", text, re.IGNORECASE) is not None
