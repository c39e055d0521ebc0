"""Services a surface declares (webhooks/component.py: the dispatcher) start with the workers,
are made from the runtime (its hub, database, settings), and stop with them."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from openenrich.config import Settings
from openenrich.db import Database
from openenrich.jobs.notify import JobHub
from openenrich.jobs.runtime import JobsRuntime

pytestmark = pytest.mark.anyio


class Recorded:
    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log

    def start(self) -> None:
        self.log.append(f"start {self.name}")

    async def stop(self) -> None:
        self.log.append(f"stop {self.name}")


async def test_services_run_beside_the_workers(settings: Settings) -> None:
    database = Database.from_settings(settings)
    log: list[str] = []
    hubs: list[JobHub] = []

    def service(name: str) -> Callable[[JobsRuntime], Recorded]:
        def make(made_by: JobsRuntime) -> Recorded:
            assert runtime.worker is not None, "made once the workers run"
            hubs.append(made_by.hub)
            return Recorded(name, log)

        return make

    runtime = JobsRuntime(settings, database, [], services=[service("a"), service("b")])
    try:
        await runtime.start(run_workers=True)
        assert log == ["start a", "start b"]
        assert hubs == [runtime.hub, runtime.hub]
    finally:
        await runtime.stop()
        await database.dispose()
    assert log == ["start a", "start b", "stop b", "stop a"]


async def test_no_services_without_workers(settings: Settings) -> None:
    database = Database.from_settings(settings)
    made: list[JobHub] = []

    def make(made_by: JobsRuntime) -> Recorded:
        made.append(made_by.hub)
        return Recorded("a", [])

    runtime = JobsRuntime(settings, database, [], services=[make])
    try:
        await runtime.start(run_workers=False)
    finally:
        await runtime.stop()
        await database.dispose()
    assert made == []
