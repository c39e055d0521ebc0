"""A step that fails on a batch loses nothing: the batch stays in the write-ahead log, the
failure shows in /errors as `processing`, and the flusher tries it again."""

from __future__ import annotations

import threading
import time

import httpx
import pyarrow as pa

from helpers.server import LiveServer
from helpers.tenants import Tenants
from openenrich.app import create_app
from openenrich.config import Settings
from openenrich.enrichers.registry import Enricher, EnricherOptions, OutputColumn, register
from streams.conftest import Lake

failures_left = threading.Semaphore(0)


@register
class FailsTwice(Enricher):
    """A plugin enricher, registered as any plugin is: it fails while `failures_left`
    has permits (its downstream is "down"), then adds a column."""

    name = "test_fails_twice"
    version = 1
    description = "Fails while told to, then marks each row"
    Options = EnricherOptions

    def inputs(self) -> list[str]:
        return []

    def outputs(self) -> list[OutputColumn]:
        return [OutputColumn("marked", "boolean", "always true")]

    def apply(self, table: pa.Table) -> dict[str, pa.Array]:
        if failures_left.acquire(blocking=False):
            raise RuntimeError("the enricher's lookup service is down")
        return {"marked": pa.array([True] * table.num_rows, pa.bool_())}


def test_a_failing_step_keeps_the_batch_and_retries_it(
    settings: Settings, tenants: Tenants
) -> None:
    quick = settings.model_copy(update={"flush_max_seconds": 0.3})
    with (
        LiveServer(create_app(quick)) as live,
        httpx.Client(base_url=live.url, timeout=30) as client,
    ):
        lake = Lake(client, tenants.key("acme"))
        created = lake.create(
            "fragile", pipeline=[{"type": "enrich", "enricher": "test_fails_twice"}]
        )
        assert created.status_code == 201, created.text
        for _ in range(2):
            failures_left.release()
        assert lake.ingest("fragile", [{"n": 1}, {"n": 2}]).status_code == 200

        def processing_errors() -> list[dict[str, object]]:
            recent = client.get("/errors?limit=100", headers=lake.headers).json()["recent"]
            return [e for e in recent if e["type"] == "processing"]

        # The flusher's own attempt fails and says so; the events are not in the lake.
        deadline = time.monotonic() + 10
        while not processing_errors() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "the enricher's lookup service is down" in str(processing_errors()[0]["message"])
        assert lake.rows("SELECT count(*) FROM fragile") == [[0]]
        # An explicit flush fails the same way: a 503, never a 500.
        failed = client.post("/streams/fragile/flush", headers=lake.headers)
        assert failed.status_code == 503
        assert "lookup service is down" in failed.json()["error"]

        # The flusher tries again (after 5 s) and the batch lands, whole.
        deadline = time.monotonic() + 20
        while lake.rows("SELECT count(*) FROM fragile") == [[0]] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert lake.rows("SELECT n, marked FROM fragile ORDER BY n") == [[1, True], [2, True]]
