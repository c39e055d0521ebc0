"""lead upload slots: a tenant's concurrent uploads, leased, shared by every process

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 03:13:39
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "lead_upload_slots",
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("holder", sa.String(length=40), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("environment", sa.String(length=4), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_lead_upload_slots_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("org_id", "environment", "slot", name=op.f("pk_lead_upload_slots")),
    )
    if op.get_bind().dialect.name == "postgresql":
        # Leases are worth nothing after a crash (they would all have expired).
        op.execute("ALTER TABLE lead_upload_slots SET UNLOGGED")


def downgrade() -> None:
    op.drop_table("lead_upload_slots")
