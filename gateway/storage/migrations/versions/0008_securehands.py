"""SecureHands: lots of units, the unit ledger, SOWs, sessions, scan engagements; Deadlines of a
session or a lot

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = sa.DateTime(timezone=True)
OLD_JOB = "sr_id IS NULL AND escalation_id IS NULL"
JOB = "sr_id IS NULL AND escalation_id IS NULL AND lot_id IS NULL"


def _id() -> sa.Column:
    return sa.Column("id", ID, nullable=False)


def upgrade() -> None:
    op.create_table(
        "unit_lots",
        _id(),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("purchased_on", sa.Date(), nullable=False),
        sa.Column("expires_on", sa.Date(), nullable=False),
        sa.Column("reference", sa.String(length=200), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_unit_lots_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unit_lots")),
    )
    op.create_index(op.f("ix_unit_lots_customer_id"), "unit_lots", ["customer_id"])
    op.create_table(
        "securehands_sows",
        _id(),
        sa.Column("sr_id", ID, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("planned_units", sa.Integer(), nullable=False),
        sa.Column("fixed_units", sa.Integer(), nullable=True),
        sa.Column("out_of_hours_rate", sa.Integer(), nullable=False),
        sa.Column("shortfall", sa.Integer(), nullable=False),
        sa.Column("report_files", sa.JSON(), nullable=False),
        sa.Column("agreed_at", WHEN, nullable=False),
        sa.Column("agreed_by", sa.String(length=320), nullable=False),
        sa.Column("finished_at", WHEN, nullable=True),
        sa.ForeignKeyConstraint(
            ["sr_id"],
            ["service_requests.id"],
            name=op.f("fk_securehands_sows_sr_id_service_requests"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_securehands_sows_customer_id_customers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_securehands_sows")),
    )
    op.create_index(op.f("ix_securehands_sows_sr_id"), "securehands_sows", ["sr_id"])
    _sessions()
    _ledger()
    _scans()
    _deadlines()


def _sessions() -> None:
    op.create_table(
        "securehands_sessions",
        _id(),
        sa.Column("sow_id", ID, nullable=False),
        sa.Column("sr_id", ID, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("requested_at", WHEN, nullable=False),
        sa.Column("planned_start", WHEN, nullable=True),
        sa.Column("planned_end", WHEN, nullable=True),
        sa.Column("actual_start", WHEN, nullable=True),
        sa.Column("actual_end", WHEN, nullable=True),
        sa.Column("units", sa.Integer(), nullable=True),
        sa.Column("counting", sa.JSON(), nullable=False),
        sa.Column("statement_message_id", sa.String(length=998), nullable=True),
        sa.Column("statement_at", WHEN, nullable=True),
        sa.Column("accept_at", WHEN, nullable=True),
        sa.Column("queried_at", WHEN, nullable=True),
        sa.Column("query_text", sa.Text(), nullable=False),
        sa.Column("feedback", sa.Text(), nullable=False),
        sa.Column("decided_at", WHEN, nullable=True),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("credited", sa.Integer(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("updated_by", sa.String(length=320), nullable=False),
        sa.ForeignKeyConstraint(
            ["sow_id"],
            ["securehands_sows.id"],
            name=op.f("fk_securehands_sessions_sow_id_securehands_sows"),
        ),
        sa.ForeignKeyConstraint(
            ["sr_id"],
            ["service_requests.id"],
            name=op.f("fk_securehands_sessions_sr_id_service_requests"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_securehands_sessions_customer_id_customers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_securehands_sessions")),
    )
    for column in ("sow_id", "sr_id", "customer_id"):
        op.create_index(op.f(f"ix_securehands_sessions_{column}"), "securehands_sessions", [column])


def _ledger() -> None:
    op.create_table(
        "unit_ledger",
        _id(),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("from_reserve", sa.Integer(), nullable=False),
        sa.Column("lot_id", ID, nullable=True),
        sa.Column("sow_id", ID, nullable=True),
        sa.Column("session_id", ID, nullable=True),
        sa.Column("at", WHEN, nullable=False),
        sa.Column("by", sa.String(length=320), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_unit_ledger_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["lot_id"], ["unit_lots.id"], name=op.f("fk_unit_ledger_lot_id_unit_lots")
        ),
        sa.ForeignKeyConstraint(
            ["sow_id"], ["securehands_sows.id"], name=op.f("fk_unit_ledger_sow_id_securehands_sows")
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["securehands_sessions.id"],
            name=op.f("fk_unit_ledger_session_id_securehands_sessions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unit_ledger")),
    )
    op.create_index("ix_unit_ledger_customer", "unit_ledger", ["customer_id", "id"])


def _scans() -> None:
    op.create_table(
        "scan_engagements",
        _id(),
        sa.Column("sr_id", ID, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("ordered_on", sa.Date(), nullable=False),
        sa.Column("expires_on", sa.Date(), nullable=False),
        sa.Column("ips", sa.Integer(), nullable=False),
        sa.Column("max_ips", sa.Integer(), nullable=False),
        sa.Column("scan", sa.Integer(), nullable=False),
        sa.Column("scan_start", WHEN, nullable=True),
        sa.Column("scan_end", WHEN, nullable=True),
        sa.Column("reports", sa.JSON(), nullable=False),
        sa.Column("report_at", WHEN, nullable=True),
        sa.Column("reviewed_on", sa.Date(), nullable=True),
        sa.Column("remediation_requested_at", WHEN, nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(
            ["sr_id"],
            ["service_requests.id"],
            name=op.f("fk_scan_engagements_sr_id_service_requests"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_scan_engagements_customer_id_customers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scan_engagements")),
        sa.UniqueConstraint("sr_id", name=op.f("uq_scan_engagements_sr_id")),
    )
    op.create_index(op.f("ix_scan_engagements_customer_id"), "scan_engagements", ["customer_id"])


def _deadlines() -> None:
    # A lot's expiry has no SR: the daily jobs' unique index must leave such rows out. It is made
    # anew outside the batch, which on SQLite copies the table and would lose its WHERE.
    op.drop_index("uq_deadlines_job", table_name="deadlines")
    with op.batch_alter_table("deadlines", schema=None) as batch_op:
        batch_op.add_column(sa.Column("session_id", ID, nullable=True))
        batch_op.add_column(sa.Column("lot_id", ID, nullable=True))
        batch_op.create_index(batch_op.f("ix_deadlines_session_id"), ["session_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_deadlines_session_id_securehands_sessions"),
            "securehands_sessions",
            ["session_id"],
            ["id"],
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_deadlines_lot_id_unit_lots"), "unit_lots", ["lot_id"], ["id"]
        )
    _job_index(JOB)


def _job_index(where: str) -> None:
    op.create_index(
        "uq_deadlines_job",
        "deadlines",
        ["kind"],
        unique=True,
        sqlite_where=sa.text(where),
        postgresql_where=sa.text(where),
    )


def downgrade() -> None:
    op.drop_index("uq_deadlines_job", table_name="deadlines")
    with op.batch_alter_table("deadlines", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_deadlines_lot_id_unit_lots"), type_="foreignkey")
        batch_op.drop_constraint(
            batch_op.f("fk_deadlines_session_id_securehands_sessions"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_deadlines_session_id"))
        batch_op.drop_column("lot_id")
        batch_op.drop_column("session_id")
    _job_index(OLD_JOB)
    op.drop_table("scan_engagements")
    op.drop_table("unit_ledger")
    op.drop_table("securehands_sessions")
    op.drop_table("securehands_sows")
    op.drop_table("unit_lots")
