"""large mail: a stored mail over 1 MB is kept in raw_mails.content, the table's last column

SQLite writes a blob in pieces (incremental blob I/O) only when it ends the row: in `data`,
which columns follow, a 30 MB mail was built whole in memory twice (gateway/storage/blobs.py).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-10 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("raw_mails", schema=None) as batch_op:
        batch_op.add_column(sa.Column("content", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    op.execute("UPDATE raw_mails SET data = content WHERE content IS NOT NULL")
    with op.batch_alter_table("raw_mails", schema=None) as batch_op:
        batch_op.drop_column("content")
