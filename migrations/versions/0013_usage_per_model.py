"""Usage per model: per user, model and UTC day, the messages and reported tokens

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 19:20:00

`usage_model_counters` splits what `usage_counters` counts per user and day by the model
the message was sent to, for the administrators' usage view per model. `usage_counters`
stays the quota's source (it outlives a deleted model; this table's rows go with their
model). Nothing is backfilled: per-model figures start with this revision.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "usage_model_counters",
        sa.Column("model_id", sa.UUID(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("messages", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("completion_tokens", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
            name=op.f("fk_usage_model_counters_model_id_models"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_usage_model_counters_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("model_id", "day", "user_id", name=op.f("pk_usage_model_counters")),
    )
    op.create_index(
        op.f("ix_usage_model_counters_user_id"), "usage_model_counters", ["user_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_usage_model_counters_user_id"), table_name="usage_model_counters")
    op.drop_table("usage_model_counters")
