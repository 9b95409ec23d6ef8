"""request events (every change of an SR's state) and the indexes the reports read by

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "request_events",
        sa.Column("id", ID, nullable=False),
        sa.Column("sr_id", ID, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("from_state", sa.String(length=24), nullable=True),
        sa.Column("to_state", sa.String(length=24), nullable=False),
        sa.Column("by", sa.String(length=320), nullable=False),
        sa.ForeignKeyConstraint(
            ["sr_id"],
            ["service_requests.id"],
            name=op.f("fk_request_events_sr_id_service_requests"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_request_events")),
    )
    op.create_index("ix_request_events_sr_at", "request_events", ["sr_id", "at"], unique=False)
    op.create_index("ix_service_requests_created_at", "service_requests", ["created_at"])
    op.create_index("ix_escalations_opened_at", "escalations", ["opened_at"])
    op.create_index("ix_deliveries_template_sr", "deliveries", ["template", "sr_id"])
    # What is known of the SRs already there: when each was opened and, if closed, when. What
    # happened between (waiting, resolved) was not recorded: they were open until closed.
    op.execute(
        "INSERT INTO request_events (sr_id, at, from_state, to_state, by) "
        "SELECT id, created_at, NULL, 'open', '' FROM service_requests"
    )
    op.execute(
        "INSERT INTO request_events (sr_id, at, from_state, to_state, by) "
        "SELECT id, closed_at, 'open', 'closed', '' FROM service_requests "
        "WHERE closed_at IS NOT NULL"
    )


def downgrade() -> None:
    op.drop_index("ix_deliveries_template_sr", table_name="deliveries")
    op.drop_index("ix_escalations_opened_at", table_name="escalations")
    op.drop_index("ix_service_requests_created_at", table_name="service_requests")
    op.drop_index("ix_request_events_sr_at", table_name="request_events")
    op.drop_table("request_events")
