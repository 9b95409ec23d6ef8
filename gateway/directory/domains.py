"""R6.4: what each sender domain's mail must prove (its policy); others use the settings'."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.directory.checks import DirectoryError, choice
from gateway.storage.models import DomainPolicy

# A policy names what a sender's domain must show (per domain, or the defaults of Settings).
POLICIES = {
    "dmarc": "DMARC pass: DKIM or SPF aligned with the From domain, under a published DMARC record",
    "dkim_or_spf": "DKIM or SPF pass, aligned with the From domain (no DMARC record needed)",
    "none": "accepted unauthenticated (the verdict is recorded)",
}
POLICY_NAMES = tuple(POLICIES)


def set_domain_policy(session: Session, domain: str, policy: str, now: datetime) -> DomainPolicy:
    domain = domain.strip().lower().lstrip("@")
    if "." not in domain or "@" in domain or " " in domain:
        raise DirectoryError(f"not a domain: {domain!r}")
    policy = choice(policy, POLICY_NAMES, "policy")
    row = session.get(DomainPolicy, domain)
    if row is None:
        row = DomainPolicy(domain=domain, policy=policy, updated_at=now)
        session.add(row)
    row.policy, row.updated_at = policy, now
    session.flush()
    return row


def remove_domain_policy(session: Session, domain: str) -> None:
    row = session.get(DomainPolicy, domain.strip().lower())
    if row is None:
        raise DirectoryError(f"no policy for {domain!r}")
    session.delete(row)


def domain_policies(session: Session) -> list[DomainPolicy]:
    return list(session.scalars(select(DomainPolicy).order_by(DomainPolicy.domain)))
