"""A quarter of Example Corp, scripted to the minute through the real paths: mails over SMTP,
the SOC's answers and `#` commands by mail, `clock.tick` at chosen instants.

The clock stands still between moves (`StoppedClock`), so that every stored instant is exactly
the one chosen and the figures can be worked out by hand (tests/test_reports.py). It crosses the
end of summer time (Sunday 2026-10-25, 03:00 CEST -> 02:00 CET), Christmas Day (Friday
2026-12-25, a public holiday in Germany), New Year's Day (in Germany and in the UK), the edges of
Business Hours – Standard (09:00–17:00 Europe/Berlin), and the start of the quarter in the SOC's
time zone (Europe/London: 2026-09-30 23:00 UTC).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from gateway import clock, directory
from gateway.core.runtime import Runtime
from gateway.storage.models import ServiceRequest
from tests.support.harness import Gateway, OffsetClock, mail
from tests.support.sink import Sink

ALICE, BERND, CHLOE = "alice@example.com", "bernd@example.de", "chloe@example.fr"
ANALYST = "analyst@securecall.example"
TAM, ACCOUNT_MANAGER = "tina@example.com", "dana@example.com"
START = datetime(2026, 9, 30, 22, 0, tzinfo=UTC)
REVIEW_AT = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)  # 09:00 London on the first UK working day


class StoppedClock(OffsetClock):
    """An OffsetClock that does not run between moves: `now` is exactly the instant chosen."""

    def __init__(self, start: datetime = START) -> None:
        super().__init__(start)
        self.instant = start

    def __call__(self) -> datetime:
        return self.instant

    def advance(self, delta: timedelta) -> None:
        self.instant += delta


def utc(month: int, day: int, hour: int, minute: int = 0, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def directory_of_the_quarter(rt: Runtime) -> None:
    """Example Corp gets a TAM (the demo has its Account Manager); the quarterly job is armed."""
    with rt.sessions.begin() as session:
        customer = directory.customer_named(session, "Example Corp")
        assert customer is not None
        directory.add_contact(session, customer, TAM, "Tina Tam", rt.now(), role="tam")
    clock.prepare(rt)


@dataclass
class Script:
    gateway: Gateway
    sink: Sink
    ids: dict[str, str] = field(default_factory=dict)  # letter -> SR ID

    def move(self, when: datetime) -> None:
        """Time jumps only once the mail of the moment is out: a Delivery still being sent when
        the clock leaps days ahead would look abandoned to the sweep, and go twice."""
        self.sink.settle()
        stopped = self.gateway.clock
        assert isinstance(stopped, StoppedClock)
        assert when >= stopped.instant, f"the script goes back in time to {when}"
        stopped.instant = when

    def tick(self, when: datetime) -> None:
        self.move(when)
        clock.tick(self.gateway.runtime)

    def opens(self, letter: str, when: datetime, subject: str, body: str, sender: str) -> None:
        self.move(when)
        assert self.gateway.send(mail(sender=sender, subject=subject, body=body),
                                 mail_from=sender).code == 250  # fmt: skip
        with self.gateway.runtime.sessions.begin() as session:
            newest = session.scalars(
                select(ServiceRequest.public_id).order_by(ServiceRequest.id.desc()).limit(1)
            ).one()
        self.ids[letter] = newest

    def soc(self, letter: str, when: datetime, body: str) -> None:
        self.move(when)
        data = mail(sender=ANALYST, subject=f"RE: [{self.ids[letter]}] update", body=body)
        assert self.gateway.send(data, mail_from=ANALYST).code == 250

    def customer(self, letter: str, when: datetime, subject: str, body: str) -> None:
        self.move(when)
        data = mail(sender=ALICE, subject=f"Re: [{self.ids[letter]}] {subject}", body=body)
        assert self.gateway.send(data).code == 250


def play(gateway: Gateway, sink: Sink) -> dict[str, str]:
    """The quarter, in the order it happens. Letters name the SRs (see tests/test_reports.py)."""
    s = Script(gateway, sink)
    # Z: the last SR of Q3 (23:30 BST on 30 September), still waiting at the review.
    s.opens("Z", utc(9, 30, 22, 30), "Proxy certificate renewal", "Please renew it.", ALICE)
    # H: the first of Q4 (00:10 BST on 1 October, still 30 September in UTC).
    s.opens("H", utc(9, 30, 23, 10), "Log server disk full", "The log disk is at 99 %.", ALICE)
    s.soc("H", utc(10, 1, 7, 10), "We are clearing the log partition now.")
    s.soc("H", utc(10, 1, 8, 10), "#close\n\nThe partition is cleared.")
    s.soc("Z", utc(10, 1, 9), "#wait\n\nPlease send us the certificate request.")
    # D: SecureHands, 15:00 CEST on the Friday before summer time ends.
    s.opens("D", utc(10, 23, 13), "SecureHands: firmware upgrade of the FortiGate 600E",
            "We would like the SOC to upgrade our FortiGate 600E.", ALICE)  # fmt: skip
    # A: Saturday noon CEST; answered Sunday 10:00 CET, the night the clocks went back.
    s.opens("A", utc(10, 24, 10), "VPN drops on FG6H0E5819900001",
            "The VPN tunnel drops every few hours.", ALICE)  # fmt: skip
    s.soc("A", utc(10, 25, 9), "#wait\n\nPlease send the IKE debug output.")
    s.customer("A", utc(10, 26, 8), "VPN drops", "Here is the debug output.")
    s.soc("A", utc(10, 26, 12), "#resolve\n\nA new IPsec proposal fixes it.")
    s.soc("D", utc(10, 26, 13), "We are preparing the Statement of Work for the upgrade.")
    s.soc("A", utc(10, 28, 12), "#close")
    s.soc("D", utc(10, 30, 10), "#close")
    # B: asked for P1, raised to P1 by the SOC, answered late, escalated to Director level.
    s.opens("B", utc(11, 3, 14), "FortiGate 600E cluster down",
            "Priority 1: our production is down since 14:00.", ALICE)  # fmt: skip
    s.soc("B", utc(11, 3, 14, 10), "#priority 1")
    for when in (utc(11, 3, 14, 25), utc(11, 3, 14, 31), utc(11, 3, 15, 11), utc(11, 3, 16, 12)):
        s.tick(when)  # warning, breach, two not-updated alerts (and the Q3 account review)
    s.customer("B", utc(11, 3, 16, 30), "please escalate", "Nothing works, please escalate.")
    s.soc("B", utc(11, 3, 17), "The vendor's engineer is on the line with us; next update 19:00.")
    s.customer("B", utc(11, 4, 9), "still down, escalate again", "Still down.")
    s.soc("B", utc(11, 4, 16), "#note\nwaiting for the vendor's replacement unit")
    s.tick(utc(11, 4, 16, 31))  # 24 hours after the P1 escalation opened: Director level
    s.soc("B", utc(11, 5, 10), "#deescalate replaced unit\n#resolve\n\nThe new unit is in service.")
    s.soc("B", utc(11, 6, 10), "#close")
    # C: Friday 17:30 CET, after Business Hours (which a 24×7 target does not care about).
    s.opens("C", utc(11, 13, 16, 30), "Lizenzfehler Check Point 6200 CP6200-77-4411",
            "Guten Tag, die Lizenz wird nicht mehr erkannt.", BERND)  # fmt: skip
    s.soc("C", utc(11, 13, 17, 30), "#priority 2\n\nWe are checking the licence with the vendor.")
    s.soc("C", utc(11, 16, 9), "#close")
    # F: escalated by the SOC after the customer's call, answered (and its plan given) late.
    s.opens("F", utc(12, 1, 8), "Problème de journalisation",
            "Bonjour, les journaux ne sont plus transmis.", CHLOE)  # fmt: skip
    s.soc("F", utc(12, 1, 9), "#escalate customer called: logs missing for the audit")
    s.tick(utc(12, 2, 9, 30))  # the Initial Response breach and a not-updated alert
    s.soc("F", utc(12, 2, 10), "The log forwarder lost its certificate; we are renewing it.")
    s.soc("F", utc(12, 3, 9), "#deescalate certificate renewed\n#close")
    # E: SecureHands at 16:00 CET on Christmas Eve; Christmas Day is a holiday in Germany.
    s.opens("E", utc(12, 24, 15), "SecureHands: rule review", "Please review our rules.", ALICE)
    s.soc("E", utc(12, 28, 9, 30), "We have scheduled the rule review for January.")
    # G: SecureHands at 16:30 CET on New Year's Eve; unanswered, its target not yet due.
    s.opens("G", utc(12, 31, 15, 30), "SecureHands: policy clean-up", "Tidy our policy.", ALICE)
    s.tick(REVIEW_AT)  # the account review of 2026 Q4 (and two not-updated alerts)
    return s.ids
