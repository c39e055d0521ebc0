"""lead list marks: where a key's offset walk over a pipeline began, so its later pages
list the pipeline as it was at its first

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 07:00:00
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
        "lead_list_marks",
        sa.Column("api_key_id", sa.String(length=40), nullable=False),
        sa.Column("pipeline_id", sa.String(length=36), nullable=False),
        sa.Column("page_size", sa.Integer(), nullable=False),
        sa.Column("anchor_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("anchor_id", sa.String(length=36), nullable=True),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("environment", sa.String(length=4), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_lead_list_marks_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "api_key_id", "pipeline_id", "page_size", name=op.f("pk_lead_list_marks")
        ),
    )


def downgrade() -> None:
    op.drop_table("lead_list_marks")
