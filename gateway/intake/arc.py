"""R6.4: mail forwarded by a customer's own service, vouched for by its ARC chain (RFC 8617).

A forwarder (a Microsoft 365 or Google Workspace rule, a mailing list) breaks SPF and often DKIM.
When the newest ARC-Seal is by a sealer the gateway trusts (GATEWAY_TRUSTED_ARC_SEALERS) and the
whole chain validates, what that sealer found when the mail reached it (its
ARC-Authentication-Results) stands for the original verdict (RFC 8617 §7.2), as the large mailbox
providers do. A sealer nobody trusts costs no lookup.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from email.parser import BytesHeaderParser

import dkim

from gateway.intake.authentication import Verdict, parse_results, verdict_of
from gateway.intake.dns import Lookups
from parsers.headers import header_block

log = logging.getLogger(__name__)
_TAG = re.compile(r"(?:^|;)\s*([a-z]+)\s*=\s*([^;]*)", re.IGNORECASE)


def with_arc(
    verdict: Verdict, data: bytes, policy: str, trusted: frozenset[str], lookups: Lookups
) -> Verdict:
    """The trusted sealer's verdict if its chain validates and it meets `policy`; else `verdict`
    with what ARC showed (`arc`: none, untrusted, fail, temperror, or pass that proved nothing).
    """
    sealer = newest_sealer(data)
    if not sealer:
        return verdict
    if sealer not in trusted:
        return replace(verdict, arc="untrusted", arc_sealer=sealer)
    unanswered = lookups.unanswered
    cv, results, reason = dkim.arc_verify(data, dnsfunc=lookups.dkim_txt)
    if cv != dkim.CV_Pass or not results:
        # dkimpy reports a key it could not fetch as a seal that did not validate
        status = "temperror" if lookups.unanswered > unanswered else "fail"
        log.info("ARC chain sealed by %s: %s (%s)", sealer, status, reason)
        return replace(verdict, arc=status, arc_sealer=sealer)
    if bytes(results[0].get("as-domain") or b"").lower() != sealer.encode():  # not the one named
        return replace(verdict, arc="fail", arc_sealer=sealer)
    original = _sealers_verdict(results[0], verdict.from_domain)
    if original is None or not original.satisfies(policy):
        return replace(verdict, arc="pass", arc_sealer=sealer)
    return replace(original, arc="pass", arc_sealer=sealer)


def newest_sealer(data: bytes) -> str:
    """The d= of the ARC-Seal with the highest instance i= (RFC 8617 §4.2.1), or ""."""
    headers = BytesHeaderParser().parsebytes(header_block(data))
    newest, sealer = 0, ""
    for value in headers.get_all("ARC-Seal") or []:
        tags = {k.lower(): v.strip() for k, v in _TAG.findall(" ".join(str(value).split()))}
        instance = tags.get("i", "")
        if instance.isdigit() and int(instance) > newest:
            newest, sealer = int(instance), tags.get("d", "").lower()
    return sealer


def _sealers_verdict(newest: dict[str, object], from_domain: str) -> Verdict | None:
    """The newest ARC-Authentication-Results ("i=N; authserv-id; results") as a verdict."""
    value = newest.get("aar-value")
    if not isinstance(value, bytes):
        return None
    _instance, _, results = value.decode("utf-8", "replace").partition(";")
    parsed = parse_results(results)
    return None if parsed is None else verdict_of(parsed, from_domain, "arc")
