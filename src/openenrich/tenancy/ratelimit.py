"""Per-key token buckets.

A bucket holds up to `capacity` tokens and refills at `rate` tokens a second; each request
takes one. Two stores share that rule:

- `MemoryRateLimiter`: a dict in this process. The default on the embedded SQLite setup,
  where one process serves.
- `DatabaseRateLimiter`: one atomic upsert on the shared database, so every `serve`
  process on one PostgreSQL draws from the same bucket. The default on PostgreSQL.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Float, Table, case, literal
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.elements import ColumnElement

from openenrich.config import Settings
from openenrich.db import Database
from openenrich.tenancy.models import RateLimitBucket


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_after: int  # seconds until the bucket is full again
    retry_after: int  # seconds until a request would be allowed (0 when allowed)

    def limit_headers(self) -> dict[str, str]:
        """What every response to the request carries, whatever its status."""
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_after),
        }

    def headers(self) -> dict[str, str]:
        """The headers of this decision's own answer: a refusal adds Retry-After."""
        headers = self.limit_headers()
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after)
        return headers


def decide(tokens: float, allowed: bool, rate: float, capacity: float) -> Decision:
    """The decision to report, given the tokens left after the take."""
    return Decision(
        allowed=allowed,
        limit=math.floor(capacity),
        remaining=max(0, math.floor(tokens)),
        reset_after=math.ceil(max(0.0, capacity - tokens) / rate),
        retry_after=0 if allowed else max(1, math.ceil((1 - tokens) / rate)),
    )


def capacity_for(rate: float) -> float:
    """One second's worth of requests may come in a burst (at least one)."""
    return max(1.0, rate)


class RateLimiter(Protocol):
    async def take(self, bucket: str, rate: float, capacity: float | None = None) -> Decision: ...


class MemoryRateLimiter:
    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}

    async def take(self, bucket: str, rate: float, capacity: float | None = None) -> Decision:
        capacity = capacity or capacity_for(rate)
        now = time.monotonic()
        tokens, updated = self._buckets.get(bucket, (capacity, now))
        tokens = min(capacity, tokens + (now - updated) * rate)
        allowed = tokens >= 1
        if allowed:
            tokens -= 1
        self._buckets[bucket] = (tokens, now)
        return decide(tokens, allowed, rate, capacity)


def _smaller(a: ColumnElement[float], b: ColumnElement[float]) -> ColumnElement[float]:
    return case((a < b, a), else_=b)


class DatabaseRateLimiter:
    """The bucket lives in `rate_limit_buckets`; refill, decision and take are one statement,
    so concurrent requests from any number of processes serialise on the row lock."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._insert = postgresql.insert if database.dialect == "postgresql" else sqlite.insert

    async def take(self, bucket: str, rate: float, capacity: float | None = None) -> Decision:
        capacity = capacity or capacity_for(rate)
        now = time.time()
        table = RateLimitBucket.__table__
        assert isinstance(table, Table)
        elapsed = case((table.c.updated_at < now, now - table.c.updated_at), else_=0.0)
        refilled = _smaller(table.c.tokens + elapsed * rate, literal(capacity, Float()))
        statement = (
            self._insert(table)
            .values(bucket_key=bucket, tokens=capacity - 1, updated_at=now, allowed=True)
            .on_conflict_do_update(
                index_elements=[table.c.bucket_key],
                set_={
                    "tokens": case((refilled >= 1, refilled - 1), else_=refilled),
                    "allowed": refilled >= 1,
                    "updated_at": case((table.c.updated_at < now, now), else_=table.c.updated_at),
                },
            )
            .returning(table.c.tokens, table.c.allowed)
        )
        row = await self._database.execute_one(statement)
        return decide(row.tokens, row.allowed, rate, capacity)


def make_rate_limiter(settings: Settings, database: Database) -> RateLimiter:
    backend = settings.rate_limit_backend
    if backend == "auto":
        backend = "memory" if database.dialect == "sqlite" else "database"
    if backend == "memory":
        return MemoryRateLimiter()
    return DatabaseRateLimiter(database)
