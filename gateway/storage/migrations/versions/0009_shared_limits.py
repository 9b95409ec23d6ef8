"""limits shared by every process: SMTP sender rates, the last notice to an address

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 08:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sender_rates",
        sa.Column("sender", sa.String(length=320), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("mails", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("sender", name=op.f("pk_sender_rates")),
    )
    op.create_index("ix_sender_rates_window_start", "sender_rates", ["window_start"], unique=False)
    # Empty at first: the notices sent before are still found among the Deliveries
    op.create_table(
        "notice_limits",
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("template", sa.String(length=64), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("recipient", "template", name=op.f("pk_notice_limits")),
    )


def downgrade() -> None:
    op.drop_table("notice_limits")
    op.drop_index("ix_sender_rates_window_start", table_name="sender_rates")
    op.drop_table("sender_rates")
