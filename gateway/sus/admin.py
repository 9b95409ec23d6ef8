"""R4.2: what the admins do themselves (`gateway subscriptions …`, cli/sus.py): add, remove and
resume a contact's subscription by address and product name, import a CSV of them; and who an
admin at the command line is in the audit trail."""

from __future__ import annotations

import csv
import getpass
import io
import os
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.core.settings import Settings
from gateway.storage.models import Contact, Product, Subscription
from gateway.sus import subscriptions
from gateway.sus.vocabulary import Change, SubscriptionError, SubscriptionState, kinds_of


def admin_of(settings: Settings) -> str:
    """GATEWAY_ADMIN_NAME, else `cli:<the Unix user running the command>`."""
    if settings.admin_name:
        return settings.admin_name
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no name for this uid (a container's numeric user)
        user = str(os.getuid())
    return f"cli:{user}"


def contact_named(session: Session, email: str) -> Contact:
    found = session.scalar(
        select(Contact).where(Contact.email == email.strip().lower(), Contact.removed_at.is_(None))
    )
    if found is None:
        raise SubscriptionError(f"{email} is not a registered contact (R4.2)")
    return found


def product_named(session: Session, name: str) -> Product:
    found = session.scalar(select(Product).where(Product.name == name.strip()))
    if found is None:
        raise SubscriptionError(f"no product named {name!r}")
    return found


def subscription_named(session: Session, email: str, product: str) -> Subscription:
    contact, item = contact_named(session, email), product_named(session, product)
    found = subscriptions.subscription_of(session, contact, item)
    if found is None:
        raise SubscriptionError(f"{email} has no subscription to {product}")
    return found


def add(
    session: Session, email: str, product: str, kinds: str | None, change: Change
) -> tuple[Subscription, bool]:
    """Subscribed, active, with these kinds (all three by default)."""
    contact, item = contact_named(session, email), product_named(session, product)
    return subscriptions.subscribe(session, contact, item, kinds_of(kinds), change)


def remove(session: Session, email: str, product: str, change: Change) -> bool:
    """R4.3: unsubscribed at once; False if it was already."""
    return subscriptions.unsubscribe(session, subscription_named(session, email, product), change)


def resume(session: Session, email: str, product: str, change: Change) -> Subscription:
    """R4.4: a suspended subscription active again, its bounce score cleared."""
    found = subscription_named(session, email, product)
    if found.state != SubscriptionState.suspended:
        raise SubscriptionError(f"{email}'s subscription to {product} is {found.state}")
    subscriptions.move(session, found, SubscriptionState.active, change)
    return found


@dataclass
class ImportSummary:
    added: int = 0  # new, or changed (kinds, state)
    unchanged: int = 0
    refused: list[str] = field(default_factory=list)  # `line N: email, product: why`


def rows_of(text: str) -> list[tuple[int, dict[str, str]]]:
    """The CSV's rows (columns email, product, kinds) with their line numbers."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = {(h or "").strip().lower() for h in reader.fieldnames or []}
    if not {"email", "product"} <= header:
        raise SubscriptionError("the CSV needs a header row with the columns email, product, kinds")
    return [
        (line, {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items()})
        for line, raw in enumerate(reader, start=2)
    ]


def import_row(
    session: Session, line: int, row: dict[str, str], change: Change, summary: ImportSummary
) -> None:
    """One row, in a savepoint of its own: a refused row leaves the others as they are."""
    email, product = row.get("email", ""), row.get("product", "")
    try:
        with session.begin_nested():
            kinds = row.get("kinds", "").replace(";", ",").replace(" ", ",")
            _, changed = add(session, email, product, kinds, change)
    except SubscriptionError as exc:
        summary.refused.append(f"line {line}: {email or '(no email)'}, {product}: {exc}")
        return
    if changed:
        summary.added += 1
    else:
        summary.unchanged += 1
