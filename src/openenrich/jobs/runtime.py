"""What runs in the background of a server (or of `openenrich worker`): the job hub and
its cross-process listener, the workers, housekeeping, and the services the assembler
(`background.py`) hands in to run beside the workers, such as the webhook dispatcher."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Protocol

import httpx

from openenrich.config import Settings
from openenrich.db import Database
from openenrich.http.state import AppState
from openenrich.jobs.notify import JobHub, LocalPeers, PostgresListener
from openenrich.jobs.stream import Feeds
from openenrich.jobs.worker import JobSpec, Worker
from openenrich.looping import BackgroundLoop
from openenrich.nodes import NodeDirectory
from openenrich.web.client import guarded_client

logger = logging.getLogger("openenrich.jobs")

Housekeeping = Callable[[Database, Settings], Awaitable[None]]


class BackgroundService(Protocol):
    """A loop that runs beside the workers: started after them, stopped after them (in
    reverse order of starting)."""

    def start(self) -> None: ...

    async def stop(self) -> None: ...


# Made when the workers start, from the runtime (its database, settings, and the hub to
# wait on for wake-ups).
ServiceFactory = Callable[["JobsRuntime"], BackgroundService]


class JobsRuntime:
    def __init__(
        self,
        settings: Settings,
        database: Database,
        specs: Sequence[JobSpec],
        housekeeping: Sequence[Housekeeping] = (),
        services: Sequence[ServiceFactory] = (),
        parts: AppState | None = None,
    ) -> None:
        self.settings = settings
        self.database = database
        self.specs = {spec.kind: spec for spec in specs}
        self.housekeeping = list(housekeeping)
        self.service_factories = list(services)
        self.parts = parts or AppState(settings)
        self.hub = JobHub()
        self.feeds = Feeds(database, self.hub, settings)  # long-polls and event streams
        self._listener = (
            PostgresListener(settings.database, self.hub)
            if database.dialect == "postgresql"
            else None
        )
        self._peers = (
            LocalPeers(Path(f"{settings.sync_database.database}-wake"), self.hub)
            if database.dialect == "sqlite"
            else None
        )
        self.worker: Worker | None = None
        self._services: list[BackgroundService] = []
        self._node: NodeDirectory | None = None
        self._chores = BackgroundLoop(self._housekeeping, name="housekeeping")
        self._http: httpx.AsyncClient | None = None

    async def start(self, *, run_workers: bool, beside_api: bool = False) -> None:
        """Start listening for wake-ups and, with `run_workers`, the workers; `beside_api`:
        they share this process with HTTP requests, and take turns (`worker.Turns`)."""
        if self._listener is not None:
            self._listener.start()
        if self._peers is not None:
            self._peers.start()
        if not run_workers:
            return
        # The same node (and id) after a restart: the worker then knows its lost jobs.
        self._node = NodeDirectory.claim(self.settings.data_dir / "workers")
        # Jobs fetch web pages (a run's website and domain checks), which may be plain
        # http; the guard still keeps every connection to public addresses.
        self._http = guarded_client(
            allow_private=self.settings.allow_private_urls, https_only=False
        )
        self.worker = Worker(
            self.database,
            self.hub,
            self.specs,
            owner=self._node.node_id,
            concurrency=self.settings.worker_concurrency,
            lease_seconds=self.settings.job_lease_seconds,
            poll_seconds=self.settings.job_poll_seconds,
            max_attempts=self.settings.job_max_attempts,
            settings=self.settings,
            http=self._http,
            parts=self.parts,
            turns=self.settings.job_turns_in_serve if beside_api else 0,
        )
        await self.worker.start()
        for factory in self.service_factories:
            service = factory(self)
            service.start()
            self._services.append(service)
        self._chores.start()

    @property
    def node_id(self) -> str | None:
        """This process's worker id (kept across restarts), while its workers run."""
        return self._node.node_id if self._node is not None else None

    async def stop(self) -> None:
        await self._chores.stop()
        if self.worker is not None:
            await self.worker.stop()
        for service in reversed(self._services):
            await service.stop()
        self._services.clear()
        if self._http is not None:
            await self._http.aclose()
        if self._listener is not None:
            await self._listener.stop()
        if self._peers is not None:
            self._peers.stop()
        if self._node is not None:
            self._node.release()

    async def _housekeeping(self) -> None:
        while True:
            for chore in self.housekeeping:
                try:
                    await chore(self.database, self.settings)
                except Exception:
                    logger.exception("housekeeping failed")
            await asyncio.sleep(3600)
