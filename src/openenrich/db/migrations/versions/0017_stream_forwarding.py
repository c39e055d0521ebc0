"""stream forwarding: a stream's webhook_url and the webhook endpoint that delivers its
flushed events

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 08:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("streams", schema=None) as batch_op:
        batch_op.add_column(sa.Column("webhook_url", sa.String(length=2048), nullable=True))
        batch_op.add_column(sa.Column("webhook_endpoint_id", sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("streams", schema=None) as batch_op:
        batch_op.drop_column("webhook_endpoint_id")
        batch_op.drop_column("webhook_url")
