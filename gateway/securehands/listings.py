"""Units, ledger lines, sessions and scans as the command line shows them, as plain dicts."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection

from gateway.core.hours import iso
from gateway.securehands import balance as sums
from gateway.securehands.queries import CustomerRow, customer, entries, ledger_lines, lots
from gateway.securehands.records import scans
from gateway.securehands.records import sessions as session_rows
from gateway.storage.records import request_row


def number(units: Decimal | None) -> int | float | None:
    """Units as JSON numbers: whole ones as integers."""
    if units is None:
        return None
    return int(units) if units == units.to_integral_value() else float(units)


def balance(conn: Connection, owner: CustomerRow, now: datetime) -> dict[str, Any]:
    figures = sums.balance(lots(conn, owner.id), entries(conn, owner.id), owner.today(now))
    totals = ("purchased", "reserved", "pending", "debited", "forfeited", "expired", "credited")
    return {
        "customer": owner.name,
        "lots": [
            {
                "id": lot.lot.id,
                "reference": lot.lot.reference,
                "purchased_on": lot.lot.purchased_on.isoformat(),
                "expires_on": lot.lot.expires_on.isoformat(),
                "units": number(lot.lot.units),
                "left": number(lot.left),
                "valid": lot.valid,
            }
            for lot in figures.lots
        ],
        **{name: number(getattr(figures, name)) for name in totals},
        "beyond": number(figures.beyond),
        "available": number(figures.available),
        "shortfall": number(figures.shortfall),
    }


def ledger(conn: Connection, owner: CustomerRow) -> list[dict[str, Any]]:
    return [
        {
            "id": line.id,
            "at": iso(line.at),
            "kind": line.kind,
            "units": number(line.units),
            "from_reserve": number(line.from_reserve),
            "lot": line.reference,
            "sow_id": line.sow_id,
            "session_id": line.session_id,
            "by": line.by,
            "note": line.note,
        }
        for line in ledger_lines(conn, owner.id)
    ]


def sessions(conn: Connection, owner: CustomerRow | None) -> list[dict[str, Any]]:
    rows = session_rows(conn, customer_id=owner.id if owner else None)
    public: dict[int, str] = {}
    listed = []
    for row in rows:
        if row.sr_id not in public:
            public[row.sr_id] = request_row(conn, row.sr_id).public_id
        listed.append(
            {
                "id": row.id,
                "sr_id": public[row.sr_id],
                "customer": customer(conn, row.customer_id).name,
                "state": row.state,
                "requested_at": iso(row.requested_at),
                "planned_start": iso(row.planned_start),
                "planned_end": iso(row.planned_end),
                "actual_start": iso(row.actual_start),
                "actual_end": iso(row.actual_end),
                "units": number(row.units),
                "counting": row.counting,
                "statement_at": iso(row.statement_at),
                "accept_at": iso(row.accept_at),
                "queried_at": iso(row.queried_at),
                "decision": row.decision,
                "credited": number(row.credited),
                "feedback": row.feedback,
                "note": row.note,
            }
        )
    return listed


def scan_engagements(conn: Connection, owner: CustomerRow | None) -> list[dict[str, Any]]:
    return [
        {
            "sr_id": request_row(conn, row.sr_id).public_id,
            "customer": customer(conn, row.customer_id).name,
            "ordered_on": row.ordered_on.isoformat(),
            "expires_on": row.expires_on.isoformat(),
            "ips": row.ips,
            "max_ips": row.max_ips,
            "scan": row.scan,
            "scan_start": iso(row.scan_start),
            "scan_end": iso(row.scan_end),
            "reports": len(row.reports),
            "reviewed_on": row.reviewed_on.isoformat() if row.reviewed_on else None,
            "remediation_requested_at": iso(row.remediation_requested_at),
        }
        for row in scans(conn, owner.id if owner else None)
    ]
