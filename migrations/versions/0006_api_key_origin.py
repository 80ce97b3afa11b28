"""The origin each model's API key was entered for

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 09:00:00

A stored key is sent only to the scheme://host:port it was entered for, so pointing a
model at another host cannot read the write-only key. Existing keys get NULL, which
counts as bound to the model's current address (see gql_server.models.service).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("models", sa.Column("api_key_origin", sa.String(length=300), nullable=True))


def downgrade() -> None:
    op.drop_column("models", "api_key_origin")
