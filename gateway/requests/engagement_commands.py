"""R2.2: the SecureHands and scan mail commands of SOC staff (README, "Mail commands"), as a
table merged into commands.py `COMMANDS`. Each runs in a savepoint of the mail's transaction: a
command refused leaves nothing behind, and says why."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING

from gateway.core.hours import iso
from gateway.directory.queries import staff_with_role
from gateway.outbound.contexts.requests import Outcome
from gateway.outbound.notices import sendable_files
from gateway.requests import engagements
from gateway.securehands import acceptance, ledger, scans, sessions, sows, terms
from gateway.securehands.acts import Act, Done, Refused
from gateway.securehands.queries import customer
from gateway.securehands.records import sessions as sessions_of
from gateway.securehands.units import shown
from gateway.storage.records import RequestRow
from parsers.commands import Command

if TYPE_CHECKING:
    from gateway.requests.commands import Run

Use = Callable[[Act, RequestRow, str, "Run"], Done]
MANAGEMENT = ("team_leader", "duty_manager")  # §3.11.7: "SOC management" decides queries


def _carried(use: Use) -> Callable[[Run, RequestRow, Command], Outcome]:
    def carry(run: Run, sr: RequestRow, command: Command) -> Outcome:
        act = Act(run.conn, run.rt, run.sender, run.now)
        try:
            with run.conn.begin_nested():
                done = use(act, sr, command.argument.strip(), run)
        except Refused as exc:
            return Outcome(line=command.line, done=False, detail=str(exc))
        run.deliveries += done.deliveries
        return Outcome(line=command.line, done=True, detail=done.detail)

    return carry


def _session(argument: str) -> tuple[int | None, str]:
    """`7 …` or `session=7 …`: the session named, and the rest of the argument."""
    words = argument.split()
    for index, word in enumerate(words):
        if word.lower().startswith("session="):
            rest = words[:index] + words[index + 1 :]
            return terms.whole(word.partition("=")[2], "session"), " ".join(rest)
    return terms.leading_id(argument)


def _purchase(act: Act, sr: RequestRow, argument: str, run: Run) -> Done:
    """`#purchase N [YYYY-MM-DD] [reference]`"""
    units, _, rest = argument.partition(" ")
    first, _, reference = rest.strip().partition(" ")
    owner = customer(act.conn, sr.customer_id)
    if first[:4].isdigit() and "-" in first:
        return sows.buy(act, owner, terms.amount(units, "units"), terms.day(first), reference)
    today = owner.today(act.now)
    return sows.buy(act, owner, terms.amount(units, "units"), today, rest.strip())


def _balance(act: Act, sr: RequestRow, argument: str, run: Run) -> Done:
    figures = ledger.figures(act, customer(act.conn, sr.customer_id))
    lots = "; ".join(
        f"{lot.lot.reference or lot.lot.id} {shown(lot.left)} until {lot.lot.expires_on}"
        for lot in figures.lots
        if lot.valid
    )
    return Done(
        f"{lots or 'no lots'}; reserved {shown(figures.reserved)}, pending "
        f"{shown(figures.pending)}, available {shown(figures.available)}"
    )


def _sow_agreed(act: Act, sr: RequestRow, argument: str, run: Run) -> Done:
    if sr.type == scans.SCAN_TYPE:
        given = terms.options(argument, ("ips", "max-ips", "ordered"))
        today = customer(act.conn, sr.customer_id).today(act.now)
        ordered = terms.day(given["ordered"]) if "ordered" in given else today
        most = terms.whole(given.get("max-ips", str(scans.MAX_IPS)), "max-ips")
        ips = terms.whole(given.get("ips", str(min(most, scans.MAX_IPS))), "ips")
        return engagements.order_scan(act, sr, ordered, ips, most)
    return engagements.agree_sow(act, sr, terms.sow_terms(argument))


def _scheduled(act: Act, sr: RequestRow, argument: str, run: Run) -> Done:
    wanted, rest = _session(argument)
    if not rest:
        return engagements.scheduled(act, sr)
    start, end = terms.span(rest, sr.calendar.zone)
    return engagements.schedule(act, sr, wanted, start, end)


def _delivered(act: Act, sr: RequestRow, argument: str, run: Run) -> Done:
    wanted, rest = _session(argument)
    start, end = terms.span(rest, sr.calendar.zone)
    return sessions.deliver(act, sr, wanted, start, end)


def _cancel(act: Act, sr: RequestRow, argument: str, run: Run) -> Done:
    wanted, rest = _session(argument)
    beyond = rest.lower().replace("_", "-") in ("beyond-control", "beyond control")
    if rest and not beyond:
        raise Refused(f"#cancel [SESSION] [beyond-control], not {argument!r}")
    return engagements.cancel(act, sr, wanted, beyond)


def _no_show(act: Act, sr: RequestRow, argument: str, run: Run) -> Done:
    wanted, _ = _session(argument)
    return sessions.no_show(act, sr, wanted)


def _credit(act: Act, sr: RequestRow, argument: str, run: Run) -> Done:
    """`#credit N [session=ID] reason` (§3.11.7)"""
    units, _, rest = argument.partition(" ")
    wanted, reason = _session(f"session={rest}" if rest.strip().isdigit() else rest)
    return _decide(act, sr, wanted, terms.amount(units, "credit"), reason)


def _confirm(act: Act, sr: RequestRow, argument: str, run: Run) -> Done:
    wanted, reason = _session(argument)
    return _decide(act, sr, wanted, None, reason)


def _decide(
    act: Act, sr: RequestRow, wanted: int | None, credit: Decimal | None, reason: str
) -> Done:
    managers = {p.address for role in MANAGEMENT for p in staff_with_role(act.conn, role)}
    if act.by not in managers:
        raise Refused("only SOC management (team leaders, duty managers) decides a query")
    row = sessions.pick(act, sr, wanted, (acceptance.QUERIED,))
    return acceptance.decide(act, sr, row, credit, reason or "decided by SOC management")


def _report(act: Act, sr: RequestRow, argument: str, run: Run) -> Done:
    """§3.12.1, §3.13.1: the report goes to the customer attached to this answer."""
    if run.message is None or not run.relayed:
        raise Refused("#report needs an answer to the customer with the report attached")
    files = sendable_files(act.conn, run.message)
    if sr.type == scans.SCAN_TYPE:
        return scans.report(act, sr, files)
    return sows.report(act, sr, files)


def _reviewed(act: Act, sr: RequestRow, argument: str, run: Run) -> Done:
    day = terms.day(argument) if argument else customer(act.conn, sr.customer_id).today(act.now)
    return scans.review(act, sr, day)


def _reschedule(act: Act, sr: RequestRow, argument: str, run: Run) -> Done:
    start, end = terms.span(argument, sr.calendar.zone)
    return scans.reschedule(act, sr, start, end)


def _list(act: Act, sr: RequestRow, argument: str, run: Run) -> Done:
    rows = sessions_of(act.conn, sr_id=sr.id)
    listed = "; ".join(
        f"{s.id} {s.state} {iso(s.actual_start or s.planned_start) or ''}".strip() for s in rows
    )
    return Done(listed or "no sessions")


COMMANDS: dict[str, Callable[[Run, RequestRow, Command], Outcome]] = {
    name: _carried(use)
    for name, use in {
        "purchase": _purchase,
        "balance": _balance,
        "sow_agreed": _sow_agreed,
        "sow_finished": lambda act, sr, _argument, _run: sows.finish(act, sr),
        "session_request": lambda act, sr, _argument, _run: engagements.request_session(act, sr),
        "scheduled": _scheduled,
        "delivered": _delivered,
        "cancel": _cancel,
        "no_show": _no_show,
        "credit": _credit,
        "confirm": _confirm,
        "report": _report,
        "reviewed": _reviewed,
        "remediation_request": lambda act, sr, _argument, _run: scans.remediation(act, sr),
        "reschedule": _reschedule,
        "sessions": _list,
    }.items()
}
