"""change counters: a `tenancy` counter bumped by triggers on keys, organisations, plans

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 23:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# What a principal is made of. `last_used_at` and `name` are left out on purpose: the one
# is written as keys are used, and neither changes what a key may do.
KEY_COLUMNS = "role, prefix, key_hash, org_id, environment, expires_at, revoked_at, auto_approve"
WATCHED = {
    "api_keys": f"UPDATE OF {KEY_COLUMNS}",
    "organizations": "UPDATE",
    "plans": "UPDATE",
}
BUMP = "UPDATE change_counters SET value = value + 1 WHERE name = 'tenancy'"


def upgrade() -> None:
    op.create_table(
        "change_counters",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_change_counters")),
    )
    op.execute("INSERT INTO change_counters (name, value) VALUES ('tenancy', 0)")
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute(
            "CREATE FUNCTION openenrich_bump_tenancy() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN {BUMP}; RETURN NULL; END $$"
        )
    for table, update in WATCHED.items():
        for event in ("INSERT", "DELETE", update):
            name = f"{table}_{event.split()[0].lower()}_bumps_tenancy"
            if postgres:
                op.execute(
                    f"CREATE TRIGGER {name} AFTER {event} ON {table} "
                    "FOR EACH STATEMENT EXECUTE FUNCTION openenrich_bump_tenancy()"
                )
            else:
                op.execute(f"CREATE TRIGGER {name} AFTER {event} ON {table} BEGIN {BUMP}; END")


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table, update in WATCHED.items():
        for event in ("INSERT", "DELETE", update):
            name = f"{table}_{event.split()[0].lower()}_bumps_tenancy"
            op.execute(f"DROP TRIGGER {name}" + (f" ON {table}" if postgres else ""))
    if postgres:
        op.execute("DROP FUNCTION openenrich_bump_tenancy()")
    op.drop_table("change_counters")
