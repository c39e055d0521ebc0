"""SIGKILL of a worker in the middle of an AI_COLUMN job: after a restart the job finishes,
every lead has its value once, and the model answered once per lead. A job that takes its
worker down every time fails once it has used its attempts."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from helpers.http import LocalServer, Received, Reply
from helpers.processes import ServeProcess, WorkerProcess
from helpers.tenants import Tenants, bearer
from leads import seed
from leads.conftest import EchoLLM, people
from openenrich.config import Settings

pytestmark = pytest.mark.subprocess

ANSWERED_BEFORE_KILL = 10
IN_FLIGHT = 4  # OPENENRICH_LEADS_JOB_CONCURRENCY below
LEADS = 30


class GatedLLM(EchoLLM):
    """Answers the first `open_for` requests at once; holds every later one, unanswered,
    while `holding` (until `gate` opens, when nobody is listening any more). Counts the
    answers per prompt, that is per lead."""

    def __init__(self, open_for: int) -> None:
        super().__init__()
        self.open_for = open_for
        self.holding = True
        self.gate = threading.Event()
        self.answered: Counter[str] = Counter()
        self.held = 0
        self._seen = 0

    def _respond(self, number: int, received: Received) -> Reply:
        prompt = json.loads(received.body)["messages"][-1]["content"]
        with self._lock:
            self._seen += 1
            hold = self.holding and self._seen > self.open_for
            self.held += hold
        if hold:
            self.gate.wait(60)
            return Reply(503, b"{}")
        with self._lock:
            self.answered[prompt] += 1
        return super()._respond(number, received)


def until(check: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"never: {what}")


def test_a_killed_worker_resumes_the_job_and_asks_for_no_lead_twice(
    settings: Settings, tenants: Tenants, tmp_path: Path
) -> None:
    key = tenants.key("acme")
    url = str(settings.database_url)
    seeded = seed.pipeline(settings, people(LEADS))
    with GatedLLM(open_for=ANSWERED_BEFORE_KILL) as fake:
        env = {
            "OPENENRICH_PROVIDER_OPENAI_API_KEY": "sk-test",
            "OPENENRICH_PROVIDER_OPENAI_BASE_URL": f"{fake.url}/v1",
            "OPENENRICH_JOB_POLL_SECONDS": "0.2",
            "OPENENRICH_LEADS_JOB_CONCURRENCY": str(IN_FLIGHT),
        }
        api_env = {**env, "OPENENRICH_WORKERS_IN_SERVE": "false"}
        with (
            ServeProcess(tmp_path / "api", database_url=url, env=api_env) as api,
            httpx.Client(base_url=api.url, headers=bearer(key), timeout=30) as client,
        ):
            template = client.post(
                "/v1/columns/ai-templates",
                json={
                    "name": "Company summary",
                    "prompt_template": "Summarize {{company}} in one sentence.",
                    "model": "gpt-4o-mini",
                },
            ).json()
            job = client.post(
                "/v1/enrichment/start",
                json={
                    "pipeline_id": seeded.pipeline_id,
                    "enrichment_type": "AI_COLUMN",
                    "ai_template_id": template["ai_column_template_id"],
                },
            ).json()
            progress_path = f"/v1/enrichment/jobs/{job['job_id']}/progress"

            def processed() -> int:
                return int(client.get(progress_path).json()["processed_leads"])

            with WorkerProcess(tmp_path / "worker", database_url=url, env=env) as worker:
                # The answered leads are committed; the next ones are in flight, unanswered.
                until(lambda: processed() == ANSWERED_BEFORE_KILL, "the first leads committed")
                until(lambda: fake.held == IN_FLIGHT, "the window full of held requests")
                worker.kill()
                assert processed() == ANSWERED_BEFORE_KILL
            fake.holding = False
            # The same node again: it knows the job was its own and runs it at once.
            with WorkerProcess(tmp_path / "worker", database_url=url, env=env):
                until(lambda: client.get(progress_path).json()["status"] == "COMPLETED", "done")
            progress = client.get(progress_path).json()
            with client.stream("GET", f"/v1/enrichment/jobs/{job['job_id']}/events") as stream:
                events = [line for line in stream.iter_lines() if line.startswith("event: ")]
        fake.gate.set()

    assert (progress["processed_leads"], progress["failed_leads"]) == (LEADS, 0)
    assert sorted(progress["completed_lead_ids"]) == sorted(seeded.lead_ids)
    stored = seed.leads(settings, seeded.lead_ids)
    for lead in stored.values():
        expected = f"Re: Summarize {lead['company']} in one sentence."
        assert lead["custom_fields"] == {"Company summary": expected}
        assert lead["enrichment_status"] == "ENRICHED"
    assert seed.counters(settings, seeded.pipeline_id)["enriched_leads"] == LEADS
    # The model answered once per lead: none it had answered (and we had stored) was asked
    # again. The requests held when the worker died were asked again after the restart.
    prompts = [f"Summarize Company {n} in one sentence." for n in range(LEADS)]
    assert fake.answered == Counter(prompts)
    assert len(fake.received) == LEADS + IN_FLIGHT
    assert events.count("event: lead.completed") == LEADS
    assert events.count("event: job.started") == 2
    assert events[-1] == "event: job.completed"


def test_a_job_that_kills_its_worker_every_time_fails_after_its_attempts(
    settings: Settings, tenants: Tenants, tmp_path: Path
) -> None:
    key = tenants.key("acme")
    url = str(settings.database_url)
    seeded = seed.pipeline(settings, people(LEADS))
    with (
        GatedLLM(open_for=0) as fake,  # no lead ever finishes: each attempt dies mid-lead
        LocalServer(lambda n, r: Reply(status=204)) as receiver,
    ):
        env = {
            "OPENENRICH_PROVIDER_OPENAI_API_KEY": "sk-test",
            "OPENENRICH_PROVIDER_OPENAI_BASE_URL": f"{fake.url}/v1",
            "OPENENRICH_JOB_POLL_SECONDS": "0.2",
            "OPENENRICH_LEADS_JOB_CONCURRENCY": str(IN_FLIGHT),
            "OPENENRICH_JOB_MAX_ATTEMPTS": "2",
            "OPENENRICH_ALLOW_PRIVATE_URLS": "true",  # the webhook receiver is on loopback
        }
        api_env = {**env, "OPENENRICH_WORKERS_IN_SERVE": "false"}
        with (
            ServeProcess(tmp_path / "api", database_url=url, env=api_env) as api,
            httpx.Client(base_url=api.url, headers=bearer(key), timeout=30) as client,
        ):
            hook = client.post(
                "/api/v1/webhooks",
                json={"url": f"{receiver.url}/hooks", "event_types": ["enrichment.failed"]},
            )
            assert hook.status_code == 201, hook.text
            template = client.post(
                "/v1/columns/ai-templates",
                json={
                    "name": "Company summary",
                    "prompt_template": "Summarize {{company}} in one sentence.",
                    "model": "gpt-4o-mini",
                },
            ).json()
            job = client.post(
                "/v1/enrichment/start",
                json={
                    "pipeline_id": seeded.pipeline_id,
                    "enrichment_type": "AI_COLUMN",
                    "ai_template_id": template["ai_column_template_id"],
                },
            ).json()
            progress_path = f"/v1/enrichment/jobs/{job['job_id']}/progress"
            statuses = []
            for attempt in (1, 2):
                # The same node each time: on start it finds the job it was running.
                with WorkerProcess(tmp_path / "worker", database_url=url, env=env) as worker:
                    held = attempt * IN_FLIGHT  # the attempt's leads are in flight
                    until(lambda held=held: fake.held == held, f"attempt {attempt} running")
                    worker.kill()
                statuses.append(client.get(progress_path).json()["status"])
            with WorkerProcess(tmp_path / "worker", database_url=url, env=env):
                until(lambda: client.get(progress_path).json()["status"] == "FAILED", "failed")
                [delivery] = receiver.wait_for(1)
            record = client.get(f"/v1/enrichment/jobs/{job['job_id']}").json()
            with client.stream("GET", f"/v1/enrichment/jobs/{job['job_id']}/events") as stream:
                events = [line for line in stream.iter_lines() if line.startswith("event: ")]
        fake.gate.set()

    # Not given up before its second attempt died; given up when the worker came back.
    assert statuses == ["IN_PROGRESS", "IN_PROGRESS"]
    assert record["status"] == "FAILED"
    assert record["error"] == "The job failed: The job's worker stopped 2 times while running it"
    assert (record["processed_leads"], record["completed_at"] is not None) == (0, True)
    assert fake.held == 2 * IN_FLIGHT  # the third process asked the model nothing
    assert events.count("event: job.started") == 2
    assert events[-1] == "event: job.completed"
    message = json.loads(delivery.body)
    assert message["type"] == "enrichment.failed"
    assert message["data"]["job_id"] == job["job_id"]
    assert message["data"]["status"] == "FAILED"
