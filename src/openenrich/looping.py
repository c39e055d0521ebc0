"""A coroutine that runs in the background of a process from `start()` until `stop()`.

The server has several (the stats writer, the webhook dispatcher, the PostgreSQL listener,
the jobs' housekeeping, the workers' loops); each is a `BackgroundLoop` rather than its own
copy of create-task, cancel and wait.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any


class BackgroundLoop:
    def __init__(self, run: Callable[[], Coroutine[Any, Any, None]], name: str) -> None:
        self._run = run
        self._name = name
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=self._name)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def cancel(self) -> None:
        """Ask it to stop; `stop()` waits for that."""
        if self._task is not None:
            self._task.cancel()

    async def stop(self) -> None:
        """Cancel it and wait until it has stopped (a no-op if it never started)."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
