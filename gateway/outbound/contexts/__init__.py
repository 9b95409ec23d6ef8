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
from gateway.outbound.contexts.requests import (
    CommandResult,
    CustomerRepliedSoc,
    Priority1Requested,
    RequestOpenedCustomer,
    RequestOpenedSoc,
    SenderUnregistered,
    SocAnswer,
)

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
    ("sus_bulletin", Audience.customer): BulletinCustomer,
}


def checked(template: str, audience: Audience, context: Context) -> dict[str, Any]:
    """The context as the Delivery keeps it, once it is known to be the template's own."""
    wanted = CONTEXTS.get((template, audience))
    if wanted is None or type(context) is not wanted:
        raise WrongContext(f"{template}_{audience} takes {wanted}, not {type(context).__name__}")
    return context.as_json()


__all__ = ["CONTEXTS", "Context", "WrongContext", "checked"]
