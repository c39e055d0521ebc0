"""verification reports: tool calls keep their one-sentence summary (a retried run writes
its answer from the checks an earlier attempt finished), and a run keeps what its signed
report_url is minted from

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 15:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tool_calls", schema=None) as batch_op:
        batch_op.add_column(sa.Column("summary", sa.Text(), nullable=True))
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("report_link", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("report_link")
    with op.batch_alter_table("tool_calls", schema=None) as batch_op:
        batch_op.drop_column("summary")
