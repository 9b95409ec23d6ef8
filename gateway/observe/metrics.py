"""The gateway's metrics, counted where things happen (edges, intake, the clock, the service
levels, the workers) and shown by `exposition.render_metrics`.

With PROMETHEUS_MULTIPROC_DIR set (before the process starts) every process writes its values
there, and a scrape adds up those of all processes that share the directory (prometheus-client's
multiprocess mode); without it a scrape shows this process's own.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)  # the gateway's own, not the client's default
SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

MAILS = Counter(
    "gateway_mails_received",
    "Mails received, by path (smtp, imap) and outcome: the triage action (open, add, reopen, "
    "follow_up, answer, note, hold, bounce), duplicate, quarantined, deferred (IMAP, DNS "
    "trouble) or refused (SMTP, with its code)",
    ["path", "outcome", "code"],
    registry=REGISTRY,
)
INTAKE_SECONDS = Histogram(
    "gateway_intake_seconds",
    "Time from a mail's arrival to its commit (parse, authenticate, decide, store, enqueue)",
    ["path"],
    buckets=SECONDS,
    registry=REGISTRY,
)
COMMIT_GROUP = Histogram(
    "gateway_commit_group_steps",
    "Steps committed by one transaction (group commit): mails stored (intake), sender counts and "
    "Delivery marks (bookkeeping)",
    ["work"],
    buckets=(1, 2, 4, 8, 16, 32, 64),
    registry=REGISTRY,
)
DELIVERIES = Counter(
    "gateway_deliveries",
    "Delivery attempts by queue (mail, soc, bulk) and outcome (sent, failed, retried)",
    ["queue", "outcome"],
    registry=REGISTRY,
)
DEADLINES = Counter(
    "gateway_deadlines",
    "Deadlines warned about or breached, by kind (initial_response, update, …)",
    ["kind", "event"],
    registry=REGISTRY,
)
CLOCK_LAG = Histogram(
    "gateway_clock_lag_seconds",
    "How late the clock handled each Deadline (its handling time minus its next_at)",
    buckets=(0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0),
    registry=REGISTRY,
)
BOUNCES = Counter(
    "gateway_bounces",
    "Bounces recorded against the gateway's own recipients",
    registry=REGISTRY,
)
SUSPENSIONS = Counter(
    "gateway_suspensions",
    "Recipients suspended after repeated bounces",
    registry=REGISTRY,
)
AUTHENTICATION = Counter(
    "gateway_authentication",
    "Sender authentication verdicts (R6.4) by result: pass (the domain's policy is met), fail, "
    "deferred (DNS trouble: asked again), unchecked (policy none); and by who checked (source)",
    ["result", "source"],
    registry=REGISTRY,
)


def received(path: str, outcome: str, seconds: float | None = None) -> None:
    MAILS.labels(path=path, outcome=outcome, code="").inc()
    if seconds is not None:
        INTAKE_SECONDS.labels(path=path).observe(seconds)


def refused(code: int | str, path: str = "smtp") -> None:
    """A mail the edge did not take: its SMTP reply code (550, 552, 530, 451 …)."""
    MAILS.labels(path=path, outcome="refused", code=str(code)).inc()
