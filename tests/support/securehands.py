"""What the SecureHands tests do to a running gateway: open an SR, give SOC commands by mail and
read their confirmations, move the clock, buy units, read a customer's balance."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import select

from gateway import clock
from gateway.securehands import ledger, sows
from gateway.securehands.acts import Act
from gateway.securehands.balance import Balance
from gateway.securehands.queries import customer_named
from gateway.securehands.records import sessions
from gateway.storage.db import transaction
from gateway.storage.models import Delivery
from tests.support.harness import Gateway, OffsetClock, eventually, mail, sr_id_of
from tests.support.sink import Received, Sink

ALICE = "alice@example.com"
DANA = "dana@example.com"  # the demo customer's account manager
ANALYST = "analyst@securecall.example"
LEAD = "lead@securecall.example"  # a team leader: SOC management (§3.11.7)
SOC_QUEUE = "soc-queue@securecall.example"
MANAGEMENT = "soc-management@securecall.example"
CUSTOMER = "Example Corp"


def open_sr(gateway: Gateway, sink: Sink, subject: str) -> str:
    """Alice opens an SR; its ID, read from the SOC's notification of it."""
    assert gateway.send(mail(subject=subject)).code == 250

    def notification() -> list[Received]:
        return [
            m
            for m in sink.to(SOC_QUEUE)
            if "New P" in m.message["Subject"] and m.message["Subject"].endswith(f": {subject}")
        ]

    return sr_id_of(eventually(notification)[0])


def soc(gateway: Gateway, sink: Sink, sr_id: str, commands: str, sender: str = ANALYST) -> str:
    """SOC staff mail `commands` on the SR; the text of the confirmation that answers it."""
    message_id = f"<{uuid.uuid4().hex}@securecall.example>"
    data = mail(sender=sender, subject=f"[{sr_id}] commands", body=commands, message_id=message_id)
    assert gateway.send(data, mail_from=sender).code == 250

    def confirmation() -> list[Received]:
        return [m for m in sink.to(sender) if m.message["In-Reply-To"] == message_id]

    return str(eventually(confirmation)[0].text)


def at(gateway: Gateway, when: datetime) -> None:
    """Move the gateway's clock to `when` and let the clock act on what is due."""
    moved = gateway.clock
    assert isinstance(moved, OffsetClock)
    moved.advance(when - gateway.runtime.now())
    while clock.tick(gateway.runtime):
        pass


@contextmanager
def acting(gateway: Gateway) -> Iterator[Act]:
    """A transaction of the gateway, as a SecureHands use-case runs in it (by the test)."""
    rt = gateway.runtime
    with transaction(rt.sessions) as conn:
        yield Act(conn, rt, "test", rt.now())


def buy(gateway: Gateway, units: str, on: date, reference: str, customer: str = CUSTOMER) -> None:
    with acting(gateway) as doing:
        owner = customer_named(doing.conn, customer)
        assert owner is not None
        sows.buy(doing, owner, Decimal(units), on, reference)


def balance(gateway: Gateway, customer: str = CUSTOMER) -> Balance:
    with acting(gateway) as doing:
        owner = customer_named(doing.conn, customer)
        assert owner is not None
        return ledger.figures(doing, owner)


def lots_left(figures: Balance) -> dict[str, str]:
    return {lot.lot.reference: f"{lot.left.normalize():f}" for lot in figures.lots}


def session_states(gateway: Gateway) -> list[tuple[int, str]]:
    with acting(gateway) as doing:
        return [(s.id, s.state) for s in sessions(doing.conn)]


def written(gateway: Gateway, template: str) -> list[str]:
    """The recipients of the Deliveries of `template` written so far."""
    with gateway.runtime.sessions.begin() as session:
        return list(
            session.scalars(select(Delivery.recipient).where(Delivery.template == template))
        )
