"""R6.4: who really sent a mail: SPF, DKIM and DMARC, or a trusted upstream's verdict.

On the SMTP path the gateway checks SPF for the connecting IP (RFC 7208), every DKIM signature
(RFC 6376) and DMARC alignment with the From domain (RFC 7489). Mail read from a mailbox, or
relayed by a trusted MX, carries its verdict in an Authentication-Results header (RFC 8601): the
topmost one counts if a configured authserv-id wrote it; all others are ignored.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from email.parser import BytesHeaderParser
from typing import Any

import authres
import dkim
import spf
from publicsuffix2 import get_sld

from gateway.dns import Resolver

log = logging.getLogger(__name__)
MAX_SIGNATURES = 5  # DKIM signatures verified per mail; more is a hostile mail's trick

# A policy names what a sender's domain must show (per domain, or the defaults of Settings).
POLICIES = {
    "dmarc": "DMARC pass: DKIM or SPF aligned with the From domain, under a published DMARC record",
    "dkim_or_spf": "DKIM or SPF pass, aligned with the From domain (no DMARC record needed)",
    "none": "accepted unauthenticated (the verdict is recorded)",
}


@dataclass(frozen=True)
class Verdict:
    """What the checks found; `source` says who checked: this gateway, a trusted header, nobody."""

    source: str  # smtp | header | none
    from_domain: str
    spf: str = "none"  # pass | fail | softfail | neutral | none | temperror | permerror
    spf_domain: str = ""  # the domain SPF vouched for (MAIL FROM, else HELO)
    dkim: str = "none"  # pass | fail | none | temperror
    dkim_domains: tuple[str, ...] = ()  # d= of the signatures that verified
    dmarc: str = "none"  # pass | fail | none | temperror | permerror
    dmarc_policy: str = ""  # p= of the record: none | quarantine | reject

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

    def summary(self) -> str:
        return f"spf={self.spf} dkim={self.dkim} dmarc={self.dmarc} ({self.source})"

    def as_record(self) -> dict[str, Any]:
        return asdict(self)


UNCHECKED = Verdict("none", "")


def organisation(domain: str) -> str:
    """The organisational domain (RFC 7489 §3.2), from the public suffix list."""
    domain = domain.strip(".").lower()
    return (get_sld(domain) or domain) if domain else ""


def check_smtp(
    data: bytes, from_domain: str, ip: str, helo: str, mail_from: str, resolver: Resolver
) -> Verdict:
    """SPF for the connecting IP, the DKIM signatures, DMARC for the From domain."""
    spf_result, spf_domain = _spf(ip, helo, mail_from)
    dkim_result, dkim_domains = _dkim(data, resolver)
    verdict = Verdict(
        "smtp", from_domain.lower(), spf_result, spf_domain, dkim_result, dkim_domains
    )
    dmarc, policy = _dmarc(verdict, resolver)
    return Verdict(
        **{**asdict(verdict), "dmarc": dmarc, "dmarc_policy": policy, "dkim_domains": dkim_domains}
    )


def _spf(ip: str, helo: str, mail_from: str) -> tuple[str, str]:
    sender = mail_from or f"postmaster@{helo}"  # RFC 7208 §2.4: null sender checks the HELO
    try:
        result, _explanation = spf.check2(i=ip, s=sender, h=helo or "unknown")
    except Exception as exc:
        log.warning("SPF check failed for %s: %s", ip, exc)
        return "temperror", ""
    return str(result or "none"), sender.rpartition("@")[2].lower()


def _dkim(data: bytes, resolver: Resolver) -> tuple[str, tuple[str, ...]]:
    headers = BytesHeaderParser().parsebytes(data)
    count = min(len(headers.get_all("DKIM-Signature") or []), MAX_SIGNATURES)
    if not count:
        return "none", ()
    passed: list[str] = []
    temporary = False
    for index in range(count):
        checker = dkim.DKIM(data, minkey=1024)
        try:
            if checker.verify(idx=index, dnsfunc=resolver.dkim_txt):
                passed.append(checker.domain.decode("ascii", "replace").lower())
        except dkim.DnsTimeoutError:
            temporary = True
        except (dkim.DKIMException, ValueError, IndexError, UnicodeError) as exc:
            log.info("DKIM signature %d did not verify: %s", index, exc)
    if passed:
        return "pass", tuple(dict.fromkeys(passed))
    return ("temperror" if temporary else "fail"), ()


def _dmarc(verdict: Verdict, resolver: Resolver) -> tuple[str, str]:
    """RFC 7489 §6.6: the From domain's record, else its organisation's; then alignment."""
    domain = verdict.from_domain
    if not domain:
        return "permerror", ""
    try:
        record = _dmarc_record(domain, resolver)
    except Exception:
        return "temperror", ""
    if record is None:
        return "none", ""
    home = organisation(domain)
    strict_dkim, strict_spf = record.get("adkim") == "s", record.get("aspf") == "s"
    dkim_ok = verdict.dkim == "pass" and any(
        d == domain if strict_dkim else organisation(d) == home for d in verdict.dkim_domains
    )
    spf_domain = verdict.spf_domain
    spf_ok = verdict.spf == "pass" and (
        spf_domain == domain if strict_spf else organisation(spf_domain) == home
    )
    return ("pass" if dkim_ok or spf_ok else "fail"), record.get("p", "none")


def _dmarc_record(domain: str, resolver: Resolver) -> dict[str, str] | None:
    for candidate in dict.fromkeys((domain, organisation(domain))):
        records = [
            r
            for r in resolver.txt(f"_dmarc.{candidate}")
            if r.strip().lower().startswith("v=dmarc1")
        ]
        if len(records) == 1:
            tags = (part.split("=", 1) for part in records[0].split(";") if "=" in part)
            return {key.strip().lower(): value.strip().lower() for key, value in tags}
        if records:  # several records: as if none (RFC 7489 §6.6.3)
            return None
    return None


def from_trusted_header(data: bytes, from_domain: str, trusted: frozenset[str]) -> Verdict:
    """The verdict of the topmost Authentication-Results header, if a trusted authserv-id wrote it.

    The upstream MX prepends its verdict, so only the topmost header can be its own: one further
    down was in the mail before, whatever authserv-id it claims (RFC 8601 §5, §7.1).
    """
    headers = BytesHeaderParser().parsebytes(data)
    values = headers.get_all("Authentication-Results") or []
    if not trusted or not values:
        return Verdict("none", from_domain.lower())
    try:
        parsed = authres.AuthenticationResultsHeader.parse(
            f"Authentication-Results: {' '.join(str(values[0]).split())}"
        )
    except Exception as exc:  # a malformed header is simply not trusted
        log.info("unreadable Authentication-Results header: %s", exc)
        return Verdict("none", from_domain.lower())
    if str(parsed.authserv_id).lower() not in trusted:
        return Verdict("none", from_domain.lower())
    return _verdict_of(parsed, from_domain.lower())


def _verdict_of(header: Any, from_domain: str) -> Verdict:
    found: dict[str, Any] = {"spf": "none", "spf_domain": "", "dkim": "none", "dmarc": "none"}
    dkim_domains: list[str] = []
    for result in header.results:
        method, outcome = str(result.method).lower(), str(result.result).lower()
        if method == "spf":
            found["spf"] = outcome
            mailfrom = str(getattr(result, "smtp_mailfrom", "") or "")
            helo = str(getattr(result, "smtp_helo", "") or "")
            found["spf_domain"] = (mailfrom.rpartition("@")[2] or helo).lower()
        elif method == "dkim":
            if outcome == "pass":
                dkim_domains.append(str(getattr(result, "header_d", "") or "").lower())
            if found["dkim"] != "pass":
                found["dkim"] = outcome
        elif method == "dmarc":
            found["dmarc"] = outcome
    return Verdict("header", from_domain, dkim_domains=tuple(d for d in dkim_domains if d), **found)
