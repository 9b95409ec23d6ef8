"""One typed context per template: what each mail's template reads, checked when it is written.

A Delivery keeps its context as JSON and a worker renders it after the commit; a field missing
there would fail only then, as a failed Delivery. Built as these frozen dataclasses where the
notice is decided, a missing field fails at once, in the transaction that writes it, and
`notices.answer` refuses a context that is not its template's (`CONTEXTS`).
"""

from __future__ import annotations

from typing import Any

from gateway.core.vocabulary import Audience
from gateway.outbound.contexts.base import Context, WrongContext
from gateway.outbound.contexts.bulletins import BulletinCustomer
from gateway.outbound.contexts.oversight import (
    EscalationDirector,
    EscalationNotice,
    EscalationOpened,
    EscalationRecorded,
    NotUpdated,
    ProgressReview,
    TamDigest,
    TamNotice,
    TargetAlert,
)
from gateway.outbound.contexts.reports import AccountReview
from gateway.outbound.contexts.requests import (
    CommandResult,
    CustomerRepliedSoc,
    Priority1Requested,
    RequestOpenedCustomer,
    RequestOpenedSoc,
    SenderUnregistered,
    SocAnswer,
)
from gateway.outbound.contexts.securehands import (
    QueryDecided,
    QueryOverdue,
    ScanFlag,
    ScanReminder,
    SessionQueried,
    SessionStatement,
    TopUp,
    UnitsExpired,
    UnitsExpiring,
    UnitsForfeited,
)
from gateway.outbound.contexts.sus import SusCommand, SusConfirmation, SusRequest, SusSuspended

# (template, audience) -> its context; templates/mail/<template>_<audience>.<lang>.*.j2
CONTEXTS: dict[tuple[str, Audience], type[Context]] = {
    ("request_opened", Audience.customer): RequestOpenedCustomer,
    ("request_opened", Audience.soc): RequestOpenedSoc,
    ("customer_replied", Audience.soc): CustomerRepliedSoc,
    ("priority1_requested", Audience.soc): Priority1Requested,
    ("sender_unregistered", Audience.customer): SenderUnregistered,
    ("command_result", Audience.soc): CommandResult,
    ("soc_answer", Audience.customer): SocAnswer,
    ("escalation_opened", Audience.soc): EscalationOpened,
    ("escalation_notice", Audience.staff): EscalationNotice,
    ("escalation_director", Audience.soc): EscalationDirector,
    ("escalation_recorded", Audience.customer): EscalationRecorded,
    ("target_warning", Audience.soc): TargetAlert,
    ("target_breached", Audience.soc): TargetAlert,
    ("not_updated", Audience.soc): NotUpdated,
    ("tam_notice", Audience.staff): TamNotice,
    ("tam_digest", Audience.staff): TamDigest,
    ("progress_review", Audience.soc): ProgressReview,
    # SecureHands and scans (§3.11–§3.13), English only
    ("session_statement", Audience.customer): SessionStatement,
    ("session_queried", Audience.soc): SessionQueried,
    ("query_decided", Audience.customer): QueryDecided,
    ("query_overdue", Audience.soc): QueryOverdue,
    ("units_forfeited", Audience.customer): UnitsForfeited,
    ("units_topup", Audience.customer): TopUp,
    ("units_topup", Audience.soc): TopUp,
    ("units_expiring", Audience.customer): UnitsExpiring,
    ("units_expired", Audience.customer): UnitsExpired,
    ("scan_reminder", Audience.customer): ScanReminder,
    ("scan_flag", Audience.soc): ScanFlag,
    ("sus_confirmation", Audience.customer): SusConfirmation,
    ("sus_request", Audience.staff): SusRequest,
    ("sus_command", Audience.staff): SusCommand,
    ("sus_suspended", Audience.staff): SusSuspended,
    ("account_review", Audience.staff): AccountReview,
    ("sus_bulletin", Audience.customer): BulletinCustomer,
}


def checked(template: str, audience: Audience, context: Context) -> dict[str, Any]:
    """The context as the Delivery keeps it, once it is known to be the template's own."""
    wanted = CONTEXTS.get((template, audience))
    if wanted is None or type(context) is not wanted:
        raise WrongContext(f"{template}_{audience} takes {wanted}, not {type(context).__name__}")
    return context.as_json()


__all__ = ["CONTEXTS", "Context", "WrongContext", "checked"]
