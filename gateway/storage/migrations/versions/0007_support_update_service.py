"""the Support Update Service: subscriptions, audit trail, requests, bulletins; bounced contacts

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "subscriptions",
        sa.Column("id", Id, nullable=False),
        sa.Column("contact_id", Id, nullable=False),
        sa.Column("product_id", Id, nullable=False),
        sa.Column("kinds", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("bounce_score", sa.Float(), nullable=False),
        sa.Column("last_bounce_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"], name=op.f("fk_subscriptions_contact_id_contacts")
        ),
        sa.ForeignKeyConstraint(
            ["product_id"], ["products.id"], name=op.f("fk_subscriptions_product_id_products")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscriptions")),
        sa.UniqueConstraint("contact_id", "product_id", name="uq_subscriptions_contact_product"),
    )
    op.create_index(
        op.f("ix_subscriptions_contact_id"), "subscriptions", ["contact_id"], unique=False
    )
    op.create_index(
        op.f("ix_subscriptions_product_id"), "subscriptions", ["product_id"], unique=False
    )
    op.create_index(
        "ix_subscriptions_product_state", "subscriptions", ["product_id", "state"], unique=False
    )
    op.create_table(
        "subscription_changes",
        sa.Column("id", Id, nullable=False),
        sa.Column("subscription_id", Id, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("from_state", sa.String(length=16), nullable=True),
        sa.Column("to_state", sa.String(length=16), nullable=False),
        sa.Column("kinds", sa.JSON(), nullable=False),
        sa.Column("by", sa.String(length=320), nullable=False),
        sa.Column("how", sa.String(length=16), nullable=False),
        sa.Column("message_id", sa.String(length=998), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subscriptions.id"],
            name=op.f("fk_subscription_changes_subscription_id_subscriptions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscription_changes")),
    )
    op.create_index(
        op.f("ix_subscription_changes_subscription_id"),
        "subscription_changes",
        ["subscription_id"],
        unique=False,
    )
    op.create_table(
        "subscription_requests",
        sa.Column("id", Id, nullable=False),
        sa.Column("contact_id", Id, nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("product_ids", sa.JSON(), nullable=False),
        sa.Column("kinds", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("raw_mail_id", Id, nullable=True),
        sa.Column("message_id", sa.String(length=998), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=320), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_subscription_requests_contact_id_contacts"),
        ),
        sa.ForeignKeyConstraint(
            ["raw_mail_id"],
            ["raw_mails.id"],
            name=op.f("fk_subscription_requests_raw_mail_id_raw_mails"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscription_requests")),
    )
    op.create_index(
        op.f("ix_subscription_requests_contact_id"),
        "subscription_requests",
        ["contact_id"],
        unique=False,
    )
    op.create_index(
        "ix_subscription_requests_state",
        "subscription_requests",
        ["state", "created_at"],
        unique=False,
    )
    op.create_table(
        "bulletins",
        sa.Column("id", Id, nullable=False),
        sa.Column("product_id", Id, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=320), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("published_by", sa.String(length=320), nullable=True),
        sa.ForeignKeyConstraint(
            ["product_id"], ["products.id"], name=op.f("fk_bulletins_product_id_products")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bulletins")),
    )
    op.create_index(op.f("ix_bulletins_product_id"), "bulletins", ["product_id"], unique=False)
    op.create_table(
        "bulletin_recipients",
        sa.Column("id", Id, nullable=False),
        sa.Column("bulletin_id", Id, nullable=False),
        sa.Column("subscription_id", Id, nullable=False),
        sa.Column("delivery_id", Id, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["bulletin_id"],
            ["bulletins.id"],
            name=op.f("fk_bulletin_recipients_bulletin_id_bulletins"),
        ),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["deliveries.id"],
            name=op.f("fk_bulletin_recipients_delivery_id_deliveries"),
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subscriptions.id"],
            name=op.f("fk_bulletin_recipients_subscription_id_subscriptions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bulletin_recipients")),
        sa.UniqueConstraint("bulletin_id", "subscription_id", name="uq_bulletin_recipients_once"),
        sa.UniqueConstraint("delivery_id", name=op.f("uq_bulletin_recipients_delivery_id")),
    )
    op.create_index(
        op.f("ix_bulletin_recipients_subscription_id"),
        "bulletin_recipients",
        ["subscription_id"],
        unique=False,
    )
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("bounced_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("bounce_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_column("bounce_reason")
        batch_op.drop_column("bounced_at")
    op.drop_table("bulletin_recipients")
    op.drop_table("bulletins")
    op.drop_table("subscription_requests")
    op.drop_table("subscription_changes")
    op.drop_table("subscriptions")
