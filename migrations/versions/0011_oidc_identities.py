"""OIDC log-in: linked identities, one-time log-in codes, synced groups

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 19:00:00

`user_identities` links an OIDC identity (issuer, subject) to an account — unique, and one
identity per issuer per account. `login_codes` holds the SHA-256 of the one-time codes an
OIDC callback hands the SPA (`/login#code=…`), exchanged once by `exchangeLoginCode`.
`access_groups.external_name` names the IdP group a group mirrors (unique when set) and
`last_synced_at` when an OIDC log-in last set a membership from the groups claim. Adding
nullable columns without defaults rewrites nothing.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("access_groups", sa.Column("external_name", sa.String(length=200), nullable=True))
    op.add_column("access_groups", sa.Column("last_synced_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "uq_access_groups_external_name",
        "access_groups",
        ["external_name"],
        unique=True,
        postgresql_where=sa.text("external_name IS NOT NULL"),
    )
    op.create_table(
        "user_identities",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("issuer", sa.String(length=500), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_user_identities_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_identities")),
        sa.UniqueConstraint("issuer", "subject", name="uq_user_identities_issuer_subject"),
        sa.UniqueConstraint("user_id", "issuer", name="uq_user_identities_user_issuer"),
    )
    op.create_table(
        "login_codes",
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_login_codes_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("code_hash", name=op.f("pk_login_codes")),
    )
    op.create_index(op.f("ix_login_codes_user_id"), "login_codes", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_login_codes_user_id"), table_name="login_codes")
    op.drop_table("login_codes")
    op.drop_table("user_identities")
    op.drop_index("uq_access_groups_external_name", table_name="access_groups")
    op.drop_column("access_groups", "last_synced_at")
    op.drop_column("access_groups", "external_name")
