"""Step 5 for the Support Update Service: what a mail is to it (R4.2–R4.4), gathered with the
rest of the mail's facts (intake/reading.py) for triage to decide on: a contact's request, an
unsubscribe by its token, an admin's answer to a request's notice, mail to a bulletin's return
path, what a bounce or report says of the mail it returns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import Connection

from gateway.core.ids import is_our_message_id
from gateway.core.settings import Settings
from gateway.core.vocabulary import SenderKind
from gateway.sus import queries, tokens
from gateway.sus.verp import is_verp
from parsers.commands import Commands, read_commands
from parsers.mail import ParsedMail
from parsers.returns import Returned
from parsers.sus import ADMIN_COMMANDS, Asked, asked_in_subject, asked_of_sus, unsubscribe_token


@dataclass(frozen=True)
class SusFacts:
    """What a mail is to the Support Update Service (nothing, for most mail)."""

    asked: Asked | None = None  # a contact asks to subscribe or unsubscribe
    to_sus_address: bool = False  # written to GATEWAY_SUS_ADDRESS
    token_subscription: int | None = None  # `unsubscribe TOKEN`, the token verified (RFC 2369)
    answers_request: int | None = None  # an admin answers the notice of this request
    admin_commands: Commands | None = None  # `#approve`, `#deny reason`
    to_bounce_address: bool = False  # written to a VERP return path (R4.4)
    return_paths: tuple[str, ...] = ()  # VERP addresses it came to or quotes (unverified)
    returned: Returned | None = None  # a bounce's or report's account of the returned mail


@dataclass(frozen=True)
class Seen:
    """What the mail's reading gives this step."""

    mail: ParsedMail
    sender: SenderKind
    recipients: frozenset[str]  # RCPT TO, To and Cc, lower-case
    reply: str  # the newest part of the text
    returned: Returned | None


def gather(conn: Connection, seen: Seen, settings: Settings, keys: Mapping[str, bytes]) -> SusFacts:
    mail = seen.mail
    to_sus = settings.sus_mailbox in seen.recipients
    token = unsubscribe_token(mail.subject)
    answers, commands = _admin_answer(conn, seen, settings, keys)
    quoted = seen.returned.senders if seen.returned is not None else ()
    paths = [a for a in (*sorted(seen.recipients), *quoted) if is_verp(a, settings.domain)]
    return SusFacts(
        asked=_asked(seen, to_sus) if seen.sender == "contact" else None,
        to_sus_address=to_sus,
        token_subscription=tokens.verify(token, keys) if token else None,
        answers_request=answers,
        admin_commands=commands,
        to_bounce_address=any(is_verp(r, settings.domain) for r in seen.recipients),
        return_paths=tuple(dict.fromkeys(paths)),
        returned=seen.returned,
    )


def _asked(seen: Seen, to_sus: bool) -> Asked | None:
    """R4.2: anything to the SUS address is a request; to the support address, a subject that
    asks to subscribe to or unsubscribe from SUS (in English, German or French) is one."""
    if to_sus:
        return asked_of_sus(seen.mail.subject, seen.reply)
    return asked_in_subject(seen.mail.subject)


def _admin_answer(
    conn: Connection, seen: Seen, settings: Settings, keys: Mapping[str, bytes]
) -> tuple[int | None, Commands | None]:
    """An admin's mail that answers a request's notice (a signed Message-ID of ours in its
    In-Reply-To or References), and the commands in its first lines."""
    if seen.mail.from_addr not in settings.admin_addresses:
        return None, None
    ours = [m for m in seen.mail.thread_ids if is_our_message_id(m, dict(keys))]
    request_id = queries.request_answered(conn, ours)
    if request_id is None:
        return None, None
    return request_id, read_commands(seen.reply, ADMIN_COMMANDS)
