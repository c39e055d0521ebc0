"""The enrichers' tables: the `session` enricher's state per stream and user."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from openenrich.db.base import Base
from openenrich.ids import utcnow


class StreamSession(Base):
    """A user's current session on a stream: what the next batch continues from, after a
    flush or a restart. Written in the flush transaction that wrote the events it counts.

    `user_key` is the user (or anonymous) id as sent, or `sha256:<hex>` of a longer one.
    Times are the events' own, in microseconds since the epoch.
    """

    __tablename__ = "stream_sessions"
    __table_args__ = (Index("ix_stream_sessions_updated_at", "updated_at"),)

    # The tenant's columns (as TenantMixin's), leading the primary key.
    org_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    environment: Mapped[str] = mapped_column(String(4), primary_key=True)
    stream_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    user_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    session_id: Mapped[str] = mapped_column(String(32))
    last_seen_us: Mapped[int] = mapped_column(BigInteger)
    seq: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
