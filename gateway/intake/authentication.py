"""Step 4, R6.4: who really sent a mail: SPF, DKIM and DMARC, or a trusted upstream's verdict.

On the SMTP path the gateway checks SPF for the connecting IP (RFC 7208), every DKIM signature
(RFC 6376) and DMARC alignment with the From domain (RFC 7489), all within the mail's DNS budget
(`gateway.dns.Lookups`). Mail read from a mailbox, or relayed by a trusted MX, carries its verdict
in an Authentication-Results header (RFC 8601): the topmost one counts if a configured authserv-id
wrote it; all others are ignored. Forwarded mail may be vouched for by ARC (`gateway.intake.arc`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from email.parser import BytesHeaderParser
from functools import cache
from typing import Any

import authres
import dkim
import spf
from publicsuffixlist import PublicSuffixList

from gateway.core.values import plain
from gateway.intake.dns import DnsTrouble, Lookups
from parsers.headers import header_block

log = logging.getLogger(__name__)
MAX_SIGNATURES = 5  # DKIM signatures verified per mail; more is a hostile mail's trick
SPF_SHARE = 0.5  # SPF (up to 10 lookups, RFC 7208 §4.6.4) may take half the budget; DKIM the rest

# The methods whose result a policy reads: a temperror in one of them may change the outcome.
READS = {"dmarc": ("spf", "dkim", "dmarc"), "dkim_or_spf": ("spf", "dkim"), "none": ()}


@dataclass(frozen=True)
class Verdict:
    """What the checks found; `source` says who checked: this gateway, a header, ARC, nobody."""

    source: str  # smtp | header | arc | none
    from_domain: str
    spf: str = "none"  # pass | fail | softfail | neutral | none | temperror | permerror
    spf_domain: str = ""  # the domain SPF vouched for (MAIL FROM, else HELO)
    dkim: str = "none"  # pass | fail | none | temperror
    dkim_domains: tuple[str, ...] = ()  # d= of the signatures that verified
    dmarc: str = "none"  # pass | fail | none | temperror | permerror
    dmarc_policy: str = ""  # p= (sp= for a subdomain) of the record: none | quarantine | reject
    arc: str = "none"  # pass | fail | none | temperror | untrusted (sealer not trusted: unchecked)
    arc_sealer: str = ""  # d= of the newest ARC-Seal

    @property
    def aligned(self) -> bool:
        """DKIM or SPF passed for the From domain's organisation (relaxed alignment)."""
        home = organisation(self.from_domain)
        if not home:
            return False
        if self.dkim == "pass" and any(organisation(d) == home for d in self.dkim_domains):
            return True
        return self.spf == "pass" and organisation(self.spf_domain) == home

    def satisfies(self, policy: str) -> bool:
        if policy == "none":
            return True
        if policy == "dmarc":
            return self.dmarc == "pass"
        return self.aligned

    def uncertain(self, policy: str) -> bool:
        """R6.6: the policy is not met, and a DNS failure may be why: ask for the mail again.

        Only this gateway's own lookups count; a header's temperror is what the upstream found.
        """
        if self.satisfies(policy):
            return False
        own = self.source == "smtp" and any(
            getattr(self, m) == "temperror" for m in READS.get(policy, READS["dmarc"])
        )
        return own or self.arc == "temperror"

    def summary(self) -> str:
        arc = f" arc={self.arc}" if self.arc != "none" else ""
        return f"spf={self.spf} dkim={self.dkim} dmarc={self.dmarc}{arc} ({self.source})"

    def as_record(self) -> dict[str, Any]:
        return dict(plain(self))


UNCHECKED = Verdict("none", "")


@cache
def _suffixes() -> PublicSuffixList:
    """The Public Suffix List shipped with publicsuffixlist (a release each month)."""
    return PublicSuffixList()


def organisation(domain: str) -> str:
    """The organisational domain (RFC 7489 §3.2), from the public suffix list."""
    domain = domain.strip(".").lower()
    return (_suffixes().privatesuffix(domain) or domain) if domain else ""


def check_smtp(
    data: bytes, from_domain: str, ip: str, helo: str, mail_from: str, lookups: Lookups
) -> Verdict:
    """SPF for the connecting IP, the DKIM signatures, DMARC for the From domain."""
    spf_result, spf_domain = _spf(ip, helo, mail_from, lookups)
    dkim_result, dkim_domains = _dkim(data, lookups)
    verdict = Verdict(
        "smtp", from_domain.lower(), spf_result, spf_domain, dkim_result, dkim_domains
    )
    dmarc, policy = _dmarc(verdict, lookups)
    return replace(verdict, dmarc=dmarc, dmarc_policy=policy)


def _spf(ip: str, helo: str, mail_from: str, lookups: Lookups) -> tuple[str, str]:
    sender = mail_from or f"postmaster@{helo}"  # RFC 7208 §2.4: null sender checks the HELO
    domain = sender.rpartition("@")[2].lower()
    # pyspf's querytime bounds all of its lookups together (RFC 7208 §4.6.4); 0 would mean none
    allowed = min(lookups.remaining(), lookups.budget * SPF_SHARE)
    if allowed <= 0:
        return "temperror", domain
    try:
        result, _explanation = spf.check2(
            i=ip, s=sender, h=helo or "unknown", timeout=allowed, querytime=allowed
        )
    except Exception as exc:  # pyspf's own failure, not DNS (that is its temperror)
        log.warning("SPF check failed for %s: %s", ip, exc)
        return "permerror", domain
    return str(result or "none"), domain


def _dkim(data: bytes, lookups: Lookups) -> tuple[str, tuple[str, ...]]:
    headers = BytesHeaderParser().parsebytes(header_block(data))
    count = min(len(headers.get_all("DKIM-Signature") or []), MAX_SIGNATURES)
    if not count:
        return "none", ()
    passed: list[str] = []
    temporary = False
    for index in range(count):
        unanswered = lookups.unanswered
        domain = _verified(data, index, lookups)
        if domain:
            passed.append(domain)
        elif lookups.unanswered > unanswered:  # the key could not be fetched in time
            temporary = True
    if passed:
        return "pass", tuple(dict.fromkeys(passed))
    return ("temperror" if temporary else "fail"), ()


def _verified(data: bytes, index: int, lookups: Lookups) -> str:
    """The d= of signature `index` if it verifies, else ""."""
    checker = dkim.DKIM(data, minkey=1024)
    try:
        if checker.verify(idx=index, dnsfunc=lookups.dkim_txt):
            return str(checker.domain.decode("ascii", "replace").lower())
    except (dkim.DKIMException, ValueError, IndexError, UnicodeError) as exc:
        log.info("DKIM signature %d did not verify: %s", index, exc)
    return ""


def _dmarc(verdict: Verdict, lookups: Lookups) -> tuple[str, str]:
    """RFC 7489 §6.6: the From domain's record, else its organisation's; then alignment."""
    domain = verdict.from_domain
    if not domain:
        return "permerror", ""
    try:
        found = _dmarc_record(domain, lookups)
    except DnsTrouble:
        return "temperror", ""
    if found is None:
        return "none", ""
    record, at = found
    home = organisation(domain)
    strict_dkim, strict_spf = record.get("adkim") == "s", record.get("aspf") == "s"
    dkim_ok = verdict.dkim == "pass" and any(
        d == domain if strict_dkim else organisation(d) == home for d in verdict.dkim_domains
    )
    spf_domain = verdict.spf_domain
    spf_ok = verdict.spf == "pass" and (
        spf_domain == domain if strict_spf else organisation(spf_domain) == home
    )
    policy = record.get("p", "none")
    if at != domain:  # RFC 7489 §6.3: the organisation's record for a subdomain: sp=, else p=
        policy = record.get("sp", policy)
    return ("pass" if dkim_ok or spf_ok else "fail"), policy


def _dmarc_record(domain: str, lookups: Lookups) -> tuple[dict[str, str], str] | None:
    """The DMARC record's tags and the domain it was found at, or None."""
    for candidate in dict.fromkeys((domain, organisation(domain))):
        records = [
            r
            for r in lookups.txt(f"_dmarc.{candidate}")
            if r.strip().lower().startswith("v=dmarc1")
        ]
        if len(records) == 1:
            tags = (part.split("=", 1) for part in records[0].split(";") if "=" in part)
            return {key.strip().lower(): value.strip().lower() for key, value in tags}, candidate
        if records:  # several records: as if none (RFC 7489 §6.6.3)
            return None
    return None


def from_trusted_header(data: bytes, from_domain: str, trusted: frozenset[str]) -> Verdict:
    """The verdict of the topmost Authentication-Results header, if a trusted authserv-id wrote it.

    The upstream MX prepends its verdict, so only the topmost header can be its own: one further
    down was in the mail before, whatever authserv-id it claims (RFC 8601 §5, §7.1).
    """
    headers = BytesHeaderParser().parsebytes(header_block(data))
    values = headers.get_all("Authentication-Results") or []
    if not trusted or not values:
        return Verdict("none", from_domain.lower())
    parsed = parse_results(str(values[0]))
    if parsed is None or str(parsed.authserv_id).lower() not in trusted:
        return Verdict("none", from_domain.lower())
    return verdict_of(parsed, from_domain.lower(), "header")


def parse_results(value: str) -> Any:
    """An Authentication-Results value parsed by authres, or None if it cannot be read."""
    try:
        return authres.AuthenticationResultsHeader.parse(
            f"Authentication-Results: {' '.join(value.split())}"
        )
    except Exception as exc:  # a malformed header is simply not trusted
        log.info("unreadable Authentication-Results header: %s", exc)
        return None


def verdict_of(header: Any, from_domain: str, source: str) -> Verdict:
    """What a trusted authserv-id found, for this mail's From domain."""
    found: dict[str, Any] = {"spf": "none", "spf_domain": "", "dkim": "none", "dmarc": "none"}
    dkim_domains: list[str] = []
    for result in header.results:
        method, outcome = str(result.method).lower(), str(result.result).lower()
        if method == "spf":
            found["spf"] = outcome
            mailfrom = _property(result, "smtp", "mailfrom")
            found["spf_domain"] = mailfrom.rpartition("@")[2] or _property(result, "smtp", "helo")
        elif method == "dkim":
            if outcome == "pass":
                dkim_domains.append(_property(result, "header", "d"))
            if found["dkim"] != "pass":
                found["dkim"] = outcome
        elif method == "dmarc" and _property(result, "header", "from") == from_domain:
            # RFC 7489 §11.2: the result is for header.from; another domain's pass proves nothing
            found["dmarc"] = outcome
    return Verdict(source, from_domain, dkim_domains=tuple(d for d in dkim_domains if d), **found)


def _property(result: Any, kind: str, name: str) -> str:
    for prop in getattr(result, "properties", None) or ():
        if str(prop.type).lower() == kind and str(prop.name).lower() == name:
            return str(prop.value or "").strip().lower()
    return ""
