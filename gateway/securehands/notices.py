"""The SecureHands mails, written in the deciding transaction (outbound/notices.py): to the SR's
requester threaded on the SR, to the account managers, to SOC management and the SOC queue.

All in English (R1.11, §3.11.1). Times are shown in the customer's office zone.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import TypedDict

from gateway.core.hours import Calendar
from gateway.core.vocabulary import Audience
from gateway.directory.queries import Person, contacts_with_role
from gateway.outbound.contexts import Context
from gateway.outbound.contexts.securehands import LotLine
from gateway.outbound.notices import alert, answer, in_customer_thread
from gateway.securehands.acts import Act, Refused
from gateway.securehands.balance import Balance
from gateway.securehands.queries import contacts_of
from gateway.securehands.units import shown
from gateway.storage.records import RequestRow

Delivery = tuple[int, str]
ONE_DAY = timedelta(days=1)


class Figures(TypedDict):
    lots: list[LotLine]
    beyond: str
    reserved: str
    pending: str
    available: str
    shortfall: str


class When(TypedDict):
    day: str
    start: str
    end: str
    zone: str


def figures(current: Balance) -> Figures:
    """A balance as the mails show it: the lots still valid, then reserved, pending, available."""
    return Figures(
        lots=[
            LotLine(
                reference=lot.lot.reference or f"lot {lot.lot.id}",
                purchased_on=lot.lot.purchased_on.isoformat(),
                valid_until=last_day(lot.lot.expires_on),
                left=shown(lot.left),
            )
            for lot in current.lots
            if lot.valid
        ],
        beyond=shown(current.beyond),
        reserved=shown(current.reserved),
        pending=shown(current.pending),
        available=shown(current.available),
        shortfall=shown(current.shortfall),
    )


def last_day(expires_on: date) -> str:
    return (expires_on - ONE_DAY).isoformat()


def when(start: datetime, end: datetime, calendar: Calendar) -> When:
    """A session's day, start and end in the office's time; `zone` is the end's, and a start in
    another (the night the clocks change: 01:30 CEST to 03:30 CET) names its own."""
    first, last = start.astimezone(calendar.zone), end.astimezone(calendar.zone)
    begins = f"{first:%H:%M}" + ("" if f"{first:%Z}" == f"{last:%Z}" else f" {first:%Z}")
    return When(
        day=f"{first:%A} {first.day} {first:%B %Y}",
        start=begins,
        end=f"{last:%H:%M}" + ("" if last.date() == first.date() else f" on {last:%d %b}"),
        zone=f"{last:%Z}",
    )


def moment(instant: datetime, calendar: Calendar) -> str:
    at = instant.astimezone(calendar.zone)
    return f"{at:%A} {at.day} {at:%B %Y}, {at:%H:%M %Z}"


def to_requester(act: Act, sr: RequestRow, template: str, context: Context) -> Delivery:
    """A mail to the SR's requester, in the customer's own thread of the SR."""
    if sr.requester is None:
        raise Refused(f"{sr.public_id} has no requester to write to")
    return in_customer_thread(
        act.conn,
        act.rt,
        sr_id=sr.id,
        label=sr.public_id,
        template=template,
        recipient=sr.requester,
        context=context,
        now=act.now,
        language="en",
        auto_submitted="auto-generated",
    )


def to_management(act: Act, sr: RequestRow, template: str, context: Context) -> Delivery:
    return alert(
        act.conn,
        act.rt,
        template=template,
        recipient=act.rt.settings.soc_management_address,
        context=context,
        now=act.now,
        sr_id=sr.id,
        label=sr.public_id,
    )


def to_soc(act: Act, sr: RequestRow | None, template: str, context: Context) -> Delivery:
    return alert(
        act.conn,
        act.rt,
        template=template,
        recipient=act.rt.settings.soc_queue_address,
        context=context,
        now=act.now,
        sr_id=sr.id if sr else None,
        label=sr.public_id if sr else "securehands",
    )


def account_managers(act: Act, customer_id: int) -> list[Person]:
    """§3.11.2: the customer's account manager contacts; without one, every contact."""
    return contacts_with_role(act.conn, customer_id, "account_manager") or contacts_of(
        act.conn, customer_id
    )


def to_contact(
    act: Act, person: Person, template: str, context: Context, sr: RequestRow | None = None
) -> Delivery:
    """An automatic mail to one of the customer's contacts, about an SR or about their units."""
    return answer(
        act.conn,
        act.rt,
        template=template,
        recipient=person.address,
        mail=None,
        context=context,
        now=act.now,
        audience=Audience.customer,
        sr_id=sr.id if sr else None,
        label=sr.public_id if sr else "units",
        auto_submitted="auto-generated",
    )
