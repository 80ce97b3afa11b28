"""Usage quotas: limits per user and per access group, and per-user daily usage counters

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 19:05:00

`usage_limits` holds one row per user or access group that has a quota (exactly one of
`user_id`, `group_id`): per limit kind NULL (not set at this level), -1 (explicitly
unlimited) or the limit. `usage_counters` counts, per user and UTC day, the messages sent
and the tokens the provider reported; a month's tokens are the sum of its days.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "usage_limits",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=True),
        sa.Column("group_id", sa.UUID(), nullable=True),
        sa.Column("messages_per_day", sa.BigInteger(), nullable=True),
        sa.Column("tokens_per_day", sa.BigInteger(), nullable=True),
        sa.Column("tokens_per_month", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "(group_id IS NULL) <> (user_id IS NULL)", name=op.f("ck_usage_limits_exactly_one_subject")
        ),
        sa.CheckConstraint(
            "coalesce(messages_per_day, 0) >= -1 AND coalesce(tokens_per_day, 0) >= -1"
            " AND coalesce(tokens_per_month, 0) >= -1",
            name=op.f("ck_usage_limits_values_known"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_usage_limits_user_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["access_groups.id"],
            name=op.f("fk_usage_limits_group_id_access_groups"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_limits")),
        sa.UniqueConstraint("user_id", name=op.f("uq_usage_limits_user_id")),
        sa.UniqueConstraint("group_id", name=op.f("uq_usage_limits_group_id")),
    )
    op.create_table(
        "usage_counters",
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("messages", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("completion_tokens", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_usage_counters_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "day", name=op.f("pk_usage_counters")),
    )


def downgrade() -> None:
    op.drop_table("usage_counters")
    op.drop_table("usage_limits")
