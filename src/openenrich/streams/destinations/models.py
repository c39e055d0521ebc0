"""The destinations' tables: a tenant's destinations, and the outbox of staged batches each
one still has to receive (or has received, or gave up on)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from openenrich.db.base import Base, TenantMixin
from openenrich.ids import utcnow


class Destination(TenantMixin, Base):
    __tablename__ = "destinations"
    __table_args__ = (UniqueConstraint("org_id", "environment", "destination_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    destination_id: Mapped[str] = mapped_column(String(128))  # the user's name for it
    type: Mapped[str] = mapped_column(String(32))
    config: Mapped[dict[str, Any]] = mapped_column(JSON)  # without its secrets
    # The secret fields of the config (and the http type's signing secret) as one JSON
    # object sealed by the secret box: never stored or shown in plaintext.
    sealed_secrets: Mapped[str] = mapped_column(Text, default="")
    max_events: Mapped[int] = mapped_column(Integer)
    max_bytes: Mapped[int] = mapped_column(BigInteger)
    max_seconds: Mapped[float] = mapped_column()
    # Delivery: one process at a time delivers a destination (its lease), in order; a
    # failure pushes `next_attempt_at` back for the whole destination.
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_expires_at: Mapped[datetime | None] = mapped_column()
    # Waiting for more batches to join a small one (max_seconds), not backing off: a new
    # batch makes it due again at once.
    filling: Mapped[bool] = mapped_column(Boolean, default=False)
    delivered_batches: Mapped[int] = mapped_column(BigInteger, default=0)
    delivered_events: Mapped[int] = mapped_column(BigInteger, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = mapped_column()
    last_delivered_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class DestinationBatch(TenantMixin, Base):
    """One staged Parquet file of rows for one destination (the outbox). Written in the
    flush's transaction; delivered at least once, in `seq` order per destination."""

    __tablename__ = "destination_batches"
    __table_args__ = (
        UniqueConstraint("destination_pk", "name"),
        Index("ix_destination_batches_due", "destination_pk", "status", "seq"),
    )

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    batch_id: Mapped[str] = mapped_column(String(40), unique=True)  # dbt_…: sent to receivers
    destination_pk: Mapped[str] = mapped_column(
        String(40), ForeignKey("destinations.id", ondelete="CASCADE")
    )
    stream_id: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(200))
    path: Mapped[str] = mapped_column(String(1024))  # relative to the lake's root
    rows: Mapped[int] = mapped_column(BigInteger)
    bytes: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(12), default="pending")  # pending, delivered, dead
    # Batches sent together (one request) share the group of the first one: a retry sends
    # exactly the same events under the same ids, so receivers can drop a repeat.
    group_id: Mapped[str | None] = mapped_column(String(40))
    chunks_sent: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    first_attempt_at: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column()
