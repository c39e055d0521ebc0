from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from openenrich.db.base import Base, TenantMixin
from openenrich.ids import utcnow


class LakeFile(TenantMixin, Base):
    """The manifest: one row per Parquet file in the lake.

    `wal_node` and the LSN range say which log records the file holds; recovery skips
    records at or below a stream's highest `wal_last_lsn` on that node.
    """

    __tablename__ = "lake_files"
    __table_args__ = (
        Index("ix_lake_files_stream_day", "org_id", "environment", "stream_id", "kind", "day"),
        Index(
            "ix_lake_files_wal_position",
            "wal_node",
            "org_id",
            "environment",
            "stream_id",
            "kind",
            "wal_last_lsn",
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    stream_id: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(4))  # "data" or "dlq"
    day: Mapped[date] = mapped_column(Date)
    path: Mapped[str] = mapped_column(String(512), unique=True)  # relative to the lake root
    rows: Mapped[int] = mapped_column(BigInteger)
    bytes: Mapped[int] = mapped_column(BigInteger)
    min_event_time: Mapped[datetime] = mapped_column()
    max_event_time: Mapped[datetime] = mapped_column()
    wal_node: Mapped[str] = mapped_column(String(40))
    wal_first_lsn: Mapped[int] = mapped_column(BigInteger)
    wal_last_lsn: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class QuarantinedRecord(TenantMixin, Base):
    """A write-ahead log record that could not be turned into Parquet, kept aside whole.

    The flusher writes the rest of the stream's events and moves on; the record's bytes
    stay on disk at `path` (relative to the data folder, in the log's own record format)
    for an operator to inspect, and recovery never buffers it again.
    """

    __tablename__ = "lake_quarantine"
    __table_args__ = (
        UniqueConstraint("wal_node", "wal_lsn"),
        Index("ix_lake_quarantine_stream", "org_id", "environment", "stream_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    stream_id: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(4))  # the buffer it came from: "data" or "dlq"
    wal_node: Mapped[str] = mapped_column(String(40))
    wal_lsn: Mapped[int] = mapped_column(BigInteger)
    events: Mapped[int] = mapped_column(BigInteger)
    bytes: Mapped[int] = mapped_column(BigInteger)
    path: Mapped[str] = mapped_column(String(512))
    reason: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
