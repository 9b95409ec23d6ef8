"""bulletin mail: a Delivery's own header fields and envelope sender, the status cancelled, the
fan-out's last sign of life

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # "cancelled" (an unsubscribed contact's bulletins not yet sent) is longer than 8 characters
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("headers", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("mail_from", sa.String(length=320), nullable=True))
        batch_op.alter_column(
            "status", existing_type=sa.String(length=8), type_=sa.String(length=16)
        )
    with op.batch_alter_table("bulletins", schema=None) as batch_op:
        batch_op.add_column(sa.Column("fan_out_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("bulletins", schema=None) as batch_op:
        batch_op.drop_column("fan_out_at")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.alter_column(
            "status", existing_type=sa.String(length=16), type_=sa.String(length=8)
        )
        batch_op.drop_column("mail_from")
        batch_op.drop_column("headers")
