"""SIGKILL of a `serve` process in the middle of a batch: after a restart the batch
finishes, every (entity, model) pair has one record, and no model was asked again for a
pair it had answered (and we had stored)."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from entities.engine.conftest import (
    GPT,
    Oracle,
    check_order,
    entity_of,
    insert_schema,
    prompt_of,
    record_costs,
)
from helpers.http import Received, Reply
from helpers.processes import ServeProcess
from helpers.tenants import Tenants
from openenrich.config import Settings

pytestmark = pytest.mark.subprocess

MINI = "openai::gpt-4o-mini"
ENTITIES = 12
IN_FLIGHT = 2  # OPENENRICH_ENTITIES_JOB_CONCURRENCY below: 2 entities, 4 calls at a time
ANSWERED_BEFORE_KILL = 10  # calls answered (and stored) before the kill


class GatedOracle(Oracle):
    """Answers the first `open_for` calls; holds every later one, unanswered, while
    `holding`. Counts the answers per (model, entity)."""

    def __init__(self, open_for: int) -> None:
        super().__init__()
        self.open_for = open_for
        self.holding = True
        self.gate = threading.Event()
        self.answered: Counter[tuple[str, str]] = Counter()
        self.held = 0
        self._seen = 0

    def _respond(self, number: int, received: Received) -> Reply:
        request = json.loads(received.body)
        name = str(entity_of(prompt_of(request)).get("name"))
        with self._lock:
            self._seen += 1
            hold = self.holding and self._seen > self.open_for
            self.held += hold
        if hold:
            self.gate.wait(60)
            return Reply(503, b"{}")
        reply = super()._respond(number, received)
        with self._lock:
            self.answered[(request["model"], name)] += 1
        return reply


def until(check: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"never: {what}")


def test_a_killed_server_resumes_the_batch_and_asks_no_model_twice(
    settings: Settings, tenants: Tenants, tmp_path: Path
) -> None:
    key = tenants.key("acme")
    schema_id = insert_schema(tenants)
    url = str(settings.database_url)
    names = [f"Company {n}" for n in range(ENTITIES)]
    headers = {"X-API-Key": key}
    with GatedOracle(open_for=ANSWERED_BEFORE_KILL) as fake:
        env = {
            "OPENENRICH_PROVIDER_OPENAI_API_KEY": "sk-test",
            "OPENENRICH_PROVIDER_OPENAI_BASE_URL": f"{fake.url}/v1",
            "OPENENRICH_JOB_POLL_SECONDS": "0.2",
            "OPENENRICH_ENTITIES_JOB_CONCURRENCY": str(IN_FLIGHT),
        }
        with (
            ServeProcess(tmp_path / "node", database_url=url, env=env) as server,
            httpx.Client(base_url=server.url, headers=headers, timeout=30) as client,
        ):
            job_id = client.post(
                "/api/enrichment/batch/start",
                json={
                    "entities": [{"name": name} for name in names],
                    "schema_id": schema_id,
                    "models": [GPT, MINI],
                    "skip_classification": True,
                },
            ).json()["job_id"]

            def recorded() -> int:
                page = client.get("/api/records", params={"type": "enrichment"}).json()
                return int(page["total"])

            until(lambda: recorded() == ANSWERED_BEFORE_KILL, "the first pairs committed")
            # The entities in flight have asked for their next calls, which are held (how
            # many of them depends on how the calls of two entities interleave).
            until(lambda: fake.held >= IN_FLIGHT, "held calls")
            time.sleep(0.5)
            held = fake.held
            assert recorded() == ANSWERED_BEFORE_KILL
            server.kill()
        fake.holding = False
        # The same node again: it knows the job was its own and runs it at once.
        with (
            ServeProcess(tmp_path / "node", database_url=url, env=env) as server,
            httpx.Client(base_url=server.url, headers=headers, timeout=30) as client,
        ):
            until(
                lambda: client.get(f"/api/llm/jobs/{job_id}").json()["status"] == "completed",
                "done",
            )
            job = client.get(f"/api/llm/jobs/{job_id}").json()
            records = client.get("/api/records", params={"page_size": 100}).json()["records"]
            events: list[dict[str, object]] = []
            with client.stream("GET", f"/api/llm/stream/{job_id}") as stream:
                for line in stream.iter_lines():
                    if line.startswith("data: "):
                        events.append(json.loads(line[6:]))
        fake.gate.set()

    assert (job["completed_entities"], job["failed_entities"]) == (ENTITIES, 0)
    pairs = Counter((r["entity_index"], r["model"]) for r in records)
    assert set(pairs.values()) == {1}
    assert len(pairs) == ENTITIES * 3  # two models and the fusion each
    # Each model answered once per entity: none it had answered (and we had stored) was
    # asked again. The calls held when the server died were asked again after the restart.
    assert fake.answered == Counter({(m, n): 1 for m in ("gpt-4o", "gpt-4o-mini") for n in names})
    assert len(fake.received) == 2 * ENTITIES + held
    for record in records:
        if record["model"] != "fusion":
            assert record["input_tokens"] == 100
    costs = record_costs(tenants, job_id)
    assert Decimal(str(job["total_cost"])) == sum(costs, Decimal(0))
    types = [event["type"] for event in events]
    assert types.count("model_completed") == 2 * ENTITIES
    assert types.count("entity_completed") == ENTITIES
    assert types[-1] == "completed"
    check_order([{**e, "_id": n} for n, e in enumerate(events)])
