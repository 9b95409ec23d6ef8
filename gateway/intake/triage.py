"""Step 6: decide what a mail is and who hears of it: the first rule of `RULES` that holds wins,
and each notice names the writer of its mail (requests/notices.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gateway.core.vocabulary import Audience, State
from gateway.intake.authentication import Verdict
from gateway.outbound.addresses import addressable
from gateway.requests import notices
from gateway.requests.decision import Action, Decision, Facts, Notice


@dataclass(frozen=True)
class Rule:
    name: str
    when: Callable[[Facts], bool]
    action: Action
    notices: tuple[Notice, ...] = ()
    escalate: bool = False  # a contact's escalation request opens an Escalation (§3.5.5)


def _in_thread(*states: State) -> Callable[[Facts], bool]:
    return lambda f: f.thread is not None and f.thread.state in states


def _contact_in_thread(*states: State) -> Callable[[Facts], bool]:
    in_thread = _in_thread(*states)
    return lambda f: f.sender.kind == "contact" and in_thread(f)


def _soc_in_thread(f: Facts) -> bool:
    return f.sender.kind == "soc" and f.thread is not None


# R6.1: automatic replies stop at the per-address and per-SR limits, which ends any loop.
ACKNOWLEDGE = Notice(
    "request_opened",
    Audience.customer,
    notices.acknowledgement,
    lambda f: f.autoreply_allowed,
    to_sender=True,
)
# R2.1: every new SR and every customer reply reaches the SOC queue, to be answered from there.
NOTIFY_SOC_OPENED = Notice("request_opened", Audience.soc, notices.soc_copy)
NOTIFY_SOC_REPLY = Notice("customer_replied", Audience.soc, notices.soc_copy)
# R1.4: a P1 request by e-mail stays P3; the SOC hears of it at once.
ALERT_PRIORITY1 = Notice(
    "priority1_requested",
    Audience.soc,
    notices.priority1_alert,
    lambda f: f.requested is not None and f.requested.priority == 1,
)
# R1.3, R1.4: a reply on an SR below P1 that asks for P1 (or reads as an outage): at once too
ALERT_PRIORITY1_REPLY = Notice(
    "priority1_requested",
    Audience.soc,
    notices.priority1_alert,
    lambda f: (
        f.requested is not None
        and f.requested.priority == 1
        and f.thread is not None
        and f.thread.priority > 1
    ),
)
# R2.2: SOC staff naming no SR get their commands refused, with the reason.
REFUSE_COMMANDS = Notice(
    "command_result",
    Audience.soc,
    notices.refused_commands,
    lambda f: bool(f.commands.commands or f.commands.unknown),
    to_sender=True,
)
# R1.8: at most one polite notice per sender and interval, never to automatic mail.
NOTIFY_UNREGISTERED = Notice(
    "sender_unregistered",
    Audience.customer,
    notices.unregistered,
    # ... and only to a sender whose address is proven: no backscatter to forged ones.
    lambda f: not f.noticed_recently and f.authenticated and f.autoreply_allowed,
    to_sender=True,
)
_OPENED = (ACKNOWLEDGE, NOTIFY_SOC_OPENED, ALERT_PRIORITY1)


def _sus_request(f: Facts) -> bool:
    """R4.2: a contact's mail to the SUS address, or one whose subject asks to subscribe or
    unsubscribe (gateway/sus writes the one confirmation of what it came to)."""
    asked = f.sender.kind == "contact" and f.sus.asked is not None and f.automatic is None
    return asked and (f.thread is None or f.sus.to_sus_address)


def _admin_answer(f: Facts) -> bool:
    """An admin's own answer to a request's notice, proven (R6.4) and written by a person."""
    return f.sus.answers_request is not None and f.authenticated and f.automatic is None


RULES: tuple[Rule, ...] = (
    Rule("the gateway's own mail came back", lambda f: f.looped, Action.HOLD),
    # R4.4: gateway/sus matches it to its Delivery and subscriber, and counts it.
    Rule("a bounce or delivery report", lambda f: f.bounce is not None, Action.BOUNCE),
    # RFC 5965: held for a person to read, as any report; one about a bulletin also unsubscribes
    # its recipient from the product at once.
    Rule(
        "a feedback report",
        lambda f: f.mail.report is not None and f.mail.report.kind == "feedback",
        Action.COMPLAINT,
    ),
    # RFC 5965 feedback (abuse) reports and RFC 8098 read receipts: kept for a person to read,
    # not bounces (no address failed), and not added to an SR even when they thread onto one.
    Rule(
        "a feedback report, read receipt or other report",
        lambda f: f.mail.report is not None and f.mail.report.kind != "bounce",
        Action.HOLD,
    ),
    # RFC 2369, RFC 8058: the token is the proof, whoever sends it; an unsubscribe is never
    # held up (R4.3), and its confirmation goes to the subscriber, not to the sender.
    Rule(
        "an unsubscribe by its token",
        lambda f: f.sus.token_subscription is not None,
        Action.UNSUBSCRIBE,
    ),
    # Vacation replies and people answering a bulletin's envelope sender: no bounce, no SR.
    Rule("mail to a bulletin's return path", lambda f: f.sus.to_bounce_address, Action.HOLD),
    # R6.4: a contact's or SOC address not proven by SPF/DKIM/DMARC opens and updates nothing,
    # and nobody is told anything (the real owner of a forged address would be the one told).
    Rule(
        "a sender who could not be authenticated",
        lambda f: f.sender.kind in ("contact", "soc") and not f.authenticated,
        Action.HOLD,
    ),
    Rule("an admin answers a subscription request", _admin_answer, Action.APPROVAL),
    Rule("a contact asks to subscribe or unsubscribe", _sus_request, Action.SUBSCRIPTION),
    Rule(
        "automatic mail on an SR",
        lambda f: f.thread is not None and f.automatic is not None,
        Action.ADD,
    ),
    Rule(
        "an internal note from the SOC",
        lambda f: _soc_in_thread(f) and (f.to_note_address or f.commands.note),
        Action.NOTE,
    ),
    # A misspelt command may be a misspelt #note ("#notes"): nothing of it reaches the customer
    Rule(
        "the SOC's mail with an unknown command, kept as a note",
        lambda f: _soc_in_thread(f) and bool(f.commands.unknown),
        Action.NOTE,
    ),
    Rule("the SOC answers on an SR", _soc_in_thread, Action.ANSWER),
    Rule(
        "a reply on an open SR",
        _contact_in_thread(State.open, State.waiting),
        Action.ADD,
        (NOTIFY_SOC_REPLY, ALERT_PRIORITY1_REPLY),
        escalate=True,
    ),
    Rule(
        "a reply on a resolved SR",
        _contact_in_thread(State.resolved),
        Action.REOPEN,
        (NOTIFY_SOC_REPLY, ALERT_PRIORITY1_REPLY),
        escalate=True,
    ),
    Rule(
        "a reply on a closed SR",
        _contact_in_thread(State.closed),
        Action.FOLLOW_UP,
        _OPENED,
        escalate=True,
    ),
    Rule("automatic mail", lambda f: f.automatic is not None, Action.HOLD),
    Rule(
        "a new mail from a contact",
        lambda f: f.sender.kind == "contact",
        Action.OPEN,
        _OPENED,
        escalate=True,
    ),
    Rule(
        "SOC staff outside any SR",
        lambda f: f.sender.kind == "soc",
        Action.HOLD,
        (REFUSE_COMMANDS,),
    ),
    # "Ticket Trick": a service's verification mail to the support address is held, unanswered.
    Rule("a third party's verification mail", lambda f: f.verification is not None, Action.HOLD),
    Rule("an unregistered sender", lambda f: True, Action.HOLD, (NOTIFY_UNREGISTERED,)),
)


def decide(facts: Facts) -> Decision:
    """The first rule that holds decides; its notices are filtered by their own conditions."""
    for rule in RULES:
        if rule.when(facts):
            notices = tuple(
                n for n in rule.notices if n.when(facts) and (not n.to_sender or may_answer(facts))
            )
            return Decision(
                rule.action, rule.name, notices, rule.escalate and facts.escalation_asked
            )
    raise NoRuleHolds(f"no rule of the triage table holds for {facts.mail.message_id}")


def may_answer(facts: Facts) -> bool:
    """Whether any mail may go back to the sender, whatever rule decided.

    R6.1 (RFC 3834 §2): never to automatic mail, a bounce or the gateway's own mail; and only to
    a plain mailbox (`notices.addressable`): a notice that cannot be addressed is not written.
    """
    return (
        facts.automatic is None
        and facts.bounce is None
        and not facts.looped
        and addressable(facts.sender.address)
    )


class NoRuleHolds(LookupError):
    """The last rule of the triage table holds for every mail: this says it once did not."""


_SILENT = (Action.HOLD, Action.BOUNCE, Action.COMPLAINT)  # they never answer anyone


def reason_for(decision: Decision, facts: Facts, verdict: Verdict) -> str:
    """Why the mail went where it went, as the stored mail keeps it (`review list` shows it)."""
    limited = not facts.autoreply_allowed and decision.action not in _SILENT
    parts = [
        facts.bounce or facts.automatic or "",
        verdict.summary() if not facts.authenticated else "",
        facts.verification or "",
        "automatic-reply limit reached: none sent" if limited else "",
        "named an SR the sender does not belong to" if facts.foreign_thread else "",
    ]
    detail = "; ".join(part for part in parts if part)
    return f"{decision.rule} ({detail})" if detail else decision.rule
