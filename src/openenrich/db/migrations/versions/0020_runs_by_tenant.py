"""runs by tenant: GET /api/v1/runs lists a tenant's runs, newest first

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 20:45:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_runs_tenant", "runs", ["org_id", "environment", "created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_runs_tenant", table_name="runs")
