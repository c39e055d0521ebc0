"""Every LLM call is recorded (tenant, job, model, tokens, cost, latency, status).

Rows are buffered and written in one statement every `interval` seconds, so recording
costs a call microseconds instead of a transaction. The buffer is written on shutdown;
a crash loses at most the last interval's records (usage figures, not billing: credits
are charged by the job that made the call, in its own transaction).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from sqlalchemy import insert

from openenrich.db import Database, table
from openenrich.llm.models import LlmCall

logger = logging.getLogger("openenrich.llm")

_INSERT = insert(table(LlmCall))


class CallRecorder:
    def __init__(self, database: Database, *, interval: float = 0.5) -> None:
        self._database = database
        self._interval = interval
        self._rows: list[dict[str, Any]] = []
        self._task: asyncio.Task[None] | None = None

    def record(self, row: dict[str, Any]) -> None:
        self._rows.append(row)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._flush_soon())

    async def _flush_soon(self) -> None:
        await asyncio.sleep(self._interval)
        await self.flush()

    async def flush(self) -> None:
        rows, self._rows = self._rows, []
        if not rows:
            return
        try:
            async with self._database.session() as session:
                await session.execute(_INSERT, rows)
                await session.commit()
        except Exception:
            logger.exception("could not record %d LLM calls", len(rows))

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()
