"""lead field keys: the custom-field keys a tenant's leads hold, which prompt templates
may name as placeholders

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 03:14:06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "lead_field_keys",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("environment", sa.String(length=4), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_lead_field_keys_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("org_id", "environment", "key", name=op.f("pk_lead_field_keys")),
    )


def downgrade() -> None:
    op.drop_table("lead_field_keys")
