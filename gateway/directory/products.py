"""Products and entitlements (§3.1, §2.2): what a customer may log SRs for, and until when."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.directory.checks import DirectoryError
from gateway.storage.models import Customer, Entitlement, Product


def add_entitlement(
    session: Session,
    customer: Customer,
    product_name: str,
    *,
    serial: str | None,
    valid_from: date,
    valid_to: date,
    in_production: bool = True,
    end_of_support: date | None = None,
) -> Entitlement:
    if valid_to < valid_from:
        raise DirectoryError("valid_to is before valid_from")
    product = session.scalar(select(Product).where(Product.name == product_name.strip()))
    if product is None:
        product = Product(name=product_name.strip())
        session.add(product)
        session.flush()
    entitlement = Entitlement(
        customer_id=customer.id,
        product_id=product.id,
        serial=(serial or "").strip() or None,
        valid_from=valid_from,
        valid_to=valid_to,
        in_production=in_production,
        end_of_support=end_of_support,
    )
    session.add(entitlement)
    session.flush()
    return entitlement


def entitlements(session: Session, customer: Customer | None = None) -> list[Entitlement]:
    query = select(Entitlement).order_by(Entitlement.id)
    if customer is not None:
        query = query.where(Entitlement.customer_id == customer.id)
    return list(session.scalars(query))


def remove_entitlement(session: Session, entitlement_id: int) -> None:
    entitlement = session.get(Entitlement, entitlement_id)
    if entitlement is None:
        raise DirectoryError(f"no entitlement {entitlement_id}")
    session.delete(entitlement)
