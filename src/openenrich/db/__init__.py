"""Metadata store: SQLAlchemy 2 models on SQLite or PostgreSQL, migrated by Alembic."""

from openenrich.db.base import Base, TenantMixin, table
from openenrich.db.engine import Database

__all__ = ["Base", "Database", "TenantMixin", "table"]
