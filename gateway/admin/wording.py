"""How the admin pages write what they show: times in the SOC's zone, a sender's verdict, the
reports' durations and shares (as the account-review mail words them)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment

from gateway.reports import wording as reports_wording

CHECKS = ("spf", "dkim", "dmarc", "arc")


def install(env: Environment, timezone: str) -> None:
    """The templates' filters."""
    zone = ZoneInfo(timezone)
    env.filters["at"] = lambda value: at(value, zone)
    env.filters["verdict"] = verdict
    env.filters["span"] = reports_wording.span
    env.filters["share"] = reports_wording.share
    env.filters["units"] = units
    env.globals["soc_zone"] = timezone


def at(value: str | datetime | None, zone: ZoneInfo) -> str:
    """An ISO 8601 instant (as the listings give them) in the SOC's zone, to the minute."""
    if not value:
        return "–"
    instant = datetime.fromisoformat(value) if isinstance(value, str) else value
    return reports_wording.when(instant, zone)


def verdict(authentication: dict[str, Any] | None) -> str:
    """R6.4: what the sender proved, as `review show` says it."""
    found = authentication or {}
    source = found.get("source", "none")
    if source == "none":
        return "none"
    checks = " ".join(f"{name}={found.get(name, 'none')}" for name in CHECKS)
    return f"{checks} ({source})"


def units(value: Decimal | float | int) -> str:
    """SecureHands units as few digits as they need: 20, 1.5, 0."""
    shown = Decimal(str(value)).normalize()
    return f"{shown:f}" if shown else "0"
