"""the Support Update Service: the Message-IDs of request notices, bounces, suspended ones found

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "subscription_request_refs",
        sa.Column("message_id", sa.String(length=998), nullable=False),
        sa.Column("request_id", Id, nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["subscription_requests.id"],
            name=op.f("fk_subscription_request_refs_request_id_subscription_requests"),
        ),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_subscription_request_refs")),
    )
    op.create_index(
        op.f("ix_subscription_request_refs_request_id"),
        "subscription_request_refs",
        ["request_id"],
        unique=False,
    )
    op.create_table(
        "bounces",
        sa.Column("id", Id, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("contact_id", Id, nullable=False),
        sa.Column("subscription_id", Id, nullable=True),
        sa.Column("delivery_id", Id, nullable=True),
        sa.Column("raw_mail_id", Id, nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("permanent", sa.Boolean(), nullable=False),
        sa.Column("counted", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"], name=op.f("fk_bounces_contact_id_contacts")
        ),
        sa.ForeignKeyConstraint(
            ["delivery_id"], ["deliveries.id"], name=op.f("fk_bounces_delivery_id_deliveries")
        ),
        sa.ForeignKeyConstraint(
            ["raw_mail_id"], ["raw_mails.id"], name=op.f("fk_bounces_raw_mail_id_raw_mails")
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subscriptions.id"],
            name=op.f("fk_bounces_subscription_id_subscriptions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bounces")),
    )
    op.create_index(op.f("ix_bounces_contact_id"), "bounces", ["contact_id"], unique=False)
    op.create_index(op.f("ix_bounces_delivery_id"), "bounces", ["delivery_id"], unique=False)
    op.create_index(
        "ix_subscriptions_state", "subscriptions", ["state", "updated_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_subscriptions_state", table_name="subscriptions")
    op.drop_table("bounces")
    op.drop_table("subscription_request_refs")
