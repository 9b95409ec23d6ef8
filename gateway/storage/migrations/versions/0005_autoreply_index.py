"""an index for counting a recipient's automatic replies

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21 23:20:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_deliveries_recipient_auto",
        "deliveries",
        ["recipient", "auto_submitted", "created_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_deliveries_recipient_auto", table_name="deliveries")
