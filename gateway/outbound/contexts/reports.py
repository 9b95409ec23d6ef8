"""The context of the quarterly account-review mail (§3.10) to a customer's TAM and Account
Manager: the attainment, the SR history, the escalations, the open SRs, the SecureHands units
(for a customer that has them), and the charts."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.outbound.contexts.base import Context


@dataclass(frozen=True, kw_only=True)
class InlineImage:
    """A chart sent inside the mail (Content-ID `cid`, RFC 2392), rasterised from `svg` by the
    worker (workers/images.py); the HTML shows it as <img src="cid:…">."""

    cid: str
    filename: str
    alt: str
    svg: str
    width: int
    height: int


@dataclass(frozen=True, kw_only=True)
class AttainmentLine:
    label: str  # "Incident P3"
    target: str
    requests: int
    met: int
    warned: int
    missed: int
    running: int
    attainment: str  # "95.0 %", "–" when nothing was decided yet
    median: str
    p90: str
    alerts: int


@dataclass(frozen=True, kw_only=True)
class HistoryLine:
    sr_id: str
    title: str
    type: str
    priority: str  # "P3 (asked for P1)"
    product: str
    state: str
    opened: str
    initial_response: str
    resolved: str
    closed: str
    escalation: str  # "", "Duty Management", "Director level"


@dataclass(frozen=True, kw_only=True)
class EscalationLine:
    sr_id: str
    opened: str
    source: str
    requested_by: str
    level: str
    closed: str
    steps: list[str]


@dataclass(frozen=True, kw_only=True)
class OpenLine:
    sr_id: str
    title: str
    priority: int
    state: str
    opened: str
    last_update_at: str
    last_update_by: str
    last_update: str


@dataclass(frozen=True, kw_only=True)
class UnitsMonthLine:
    month: str  # "October 2026"
    purchased: str  # units as the ledger's listings write them: "5", "1.5"
    reserved: str
    released: str
    consumed: str
    forfeited: str
    expired: str
    credited: str
    available: str  # at the month's end


@dataclass(frozen=True, kw_only=True)
class ExpiringLotLine:
    reference: str
    last_valid_day: str  # "3 April 2027"
    days_left: int
    left: str
    uncovered: str  # what no agreed SOW covers


@dataclass(frozen=True, kw_only=True)
class UnitsSection:
    """§3.11.2: the quarter's movements of SecureHands units, months in the office's zone."""

    available_at_start: str
    months: list[UnitsMonthLine]
    reserved_at_end: str
    available_at_end: str
    expiring_days: int
    as_of: str  # the day the lots' days are counted from
    expiring: list[ExpiringLotLine]


@dataclass(frozen=True, kw_only=True)
class AccountReview(Context):
    """§3.10: "the Service Request history and action plans in place will be discussed"."""

    name: str
    role: str  # TAM | Account Manager
    customer: str
    quarter: str  # "2026 Q4"
    period: str  # "1 October 2026 to 31 December 2026 in SOC time, Europe/London"
    timezone: str  # the zone every time in the mail is given in (the customer's office)
    generated: str
    requests: int
    attainment: str  # the whole quarter's share attained
    attainment_lines: list[AttainmentLine]
    alerts: int  # not-updated alerts raised
    history: list[HistoryLine]
    not_listed: int
    escalations: list[EscalationLine]
    escalation_total: int
    escalation_director: int
    plan_median: str
    open: list[OpenLine]
    images: list[InlineImage]
    units: UnitsSection | None = None  # only for a customer with SecureHands units
