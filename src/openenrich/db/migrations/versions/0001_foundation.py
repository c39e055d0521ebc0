"""foundation: plans, organisations, API keys, rate-limit buckets

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The plans of the references, as editable rows (`openenrich plans set`). A NULL limit is
# unlimited. Requests/s for the lead plans is the reference's 600 requests/minute.
SEED_PLANS = [
    ("unlimited", "Unlimited", "Self-hosted default: no limits", None, None, None),
    ("streams-starter", "Starter", "Streams: flex mode, shared storage", 50, 10_000_000, None),
    ("streams-pro", "Pro", "Streams: all schema modes, DLQ, alerts", 200, 100_000_000, None),
    (
        "streams-scale",
        "Scale",
        "Streams: webhook forwarding, stream replay",
        300,
        500_000_000,
        None,
    ),
    (
        "streams-enterprise",
        "Enterprise",
        "Streams: custom limits (edit this row)",
        None,
        None,
        None,
    ),
    ("leads-free", "Free", "Lead pipelines: 100 leads", 10, None, 100),
    ("leads-starter", "Starter", "Lead pipelines: 30,000 leads", 10, None, 30_000),
    ("leads-pro", "Pro", "Lead pipelines: unlimited (1M hard ceiling)", 10, None, 1_000_000),
]


def upgrade() -> None:
    plans = op.create_table(
        "plans",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("requests_per_second", sa.Float(), nullable=True),
        sa.Column("events_per_month", sa.BigInteger(), nullable=True),
        sa.Column("lead_quota", sa.BigInteger(), nullable=True),
        sa.Column("credit_policy", sa.String(length=16), nullable=False),
        sa.Column("max_credits", sa.Numeric(precision=18, scale=4), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_plans")),
    )
    op.create_table(
        "rate_limit_buckets",
        sa.Column("bucket_key", sa.String(length=200), nullable=False),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("allowed", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("bucket_key", name=op.f("pk_rate_limit_buckets")),
    )
    if op.get_bind().dialect.name == "postgresql":
        # Bucket state is worth nothing after a crash; skipping the WAL makes takes cheaper.
        op.execute("ALTER TABLE rate_limit_buckets SET UNLOGGED")
    op.create_table(
        "organizations",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("plan_name", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["plan_name"],
            ["plans.name"],
            name=op.f("fk_organizations_plan_name_plans"),
            onupdate="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organizations")),
        sa.UniqueConstraint("name", name=op.f("uq_organizations_name")),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=8), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("environment", sa.String(length=4), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_api_keys_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
        sa.UniqueConstraint("prefix", name=op.f("uq_api_keys_prefix")),
    )
    op.create_index(op.f("ix_api_keys_org_id_environment"), "api_keys", ["org_id", "environment"])

    now = datetime.now(UTC)
    if op.get_bind().dialect.name == "sqlite":
        now = now.replace(tzinfo=None)  # stored as naive UTC, as UTCDateTime does
    op.bulk_insert(
        plans,
        [
            {
                "name": name,
                "display_name": display,
                "description": description,
                "requests_per_second": rps,
                "events_per_month": events,
                "lead_quota": leads,
                "credit_policy": "unlimited",
                "max_credits": None,
                "created_at": now,
                "updated_at": now,
            }
            for name, display, description, rps, events, leads in SEED_PLANS
        ],
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_api_keys_org_id_environment"), table_name="api_keys")
    op.drop_table("api_keys")
    op.drop_table("organizations")
    op.drop_table("rate_limit_buckets")
    op.drop_table("plans")
