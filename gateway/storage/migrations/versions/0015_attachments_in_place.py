"""attachments in place: a large attachment is its place in the stored raw mail, not a copy

An attachment cut out of a large mail (parsers/large.py) names its stored mail, the offset and
length of its encoded body there and its transfer encoding; `data` stays empty and the file is
decoded when it is read. On SQLite the table is rebuilt so that `data` stays its last column,
where a blob is written in pieces (gateway/storage/blobs.py).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-12 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    # SQLite adds a column after the last one: only a rebuilt table keeps `data` last
    with op.batch_alter_table("attachments", recreate="always" if sqlite else "auto") as batch_op:
        columns = [
            sa.Column("raw_mail_id", _ID, nullable=True),
            sa.Column("raw_start", sa.Integer(), nullable=True),
            sa.Column("raw_length", sa.Integer(), nullable=True),
            sa.Column("transfer_encoding", sa.String(length=40), nullable=True),
        ]
        for column in columns:
            if sqlite:
                batch_op.add_column(column, insert_before="data")
            else:  # PostgreSQL adds a nullable column without rewriting the table
                batch_op.add_column(column)
        batch_op.create_foreign_key(
            batch_op.f("fk_attachments_raw_mail_id_raw_mails"), "raw_mails", ["raw_mail_id"], ["id"]
        )


def downgrade() -> None:
    # Files kept in place get their bytes back only from a gateway that decodes them; here
    # they are refused rather than left empty.
    found = op.get_bind().execute(
        sa.text("SELECT count(*) FROM attachments WHERE raw_mail_id IS NOT NULL")
    )
    if found.scalar_one():
        raise RuntimeError("attachments are kept in place in their stored mails: not downgraded")
    with op.batch_alter_table("attachments", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_attachments_raw_mail_id_raw_mails"), type_="foreignkey"
        )
        for name in ("transfer_encoding", "raw_length", "raw_start", "raw_mail_id"):
            batch_op.drop_column(name)
