"""the failed recipients of a stored bounce

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Bounces stored before this revision keep NULL: their raw mail is there to be read again.
    with op.batch_alter_table("raw_mails", schema=None) as batch_op:
        batch_op.add_column(sa.Column("failed_recipients", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("raw_mails", schema=None) as batch_op:
        batch_op.drop_column("failed_recipients")
