"""The lead-job machinery through enrichment jobs: cancel keeps what finished, the event
stream (and resuming it), completion webhooks, concurrent jobs on the same leads,
Idempotency-Key."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from helpers.http import LocalServer, Reply
from helpers.tenants import Tenants
from leads import seed
from leads.conftest import Api, EchoLLM, people, serve
from openenrich.config import Settings


def ai_job(api: Api, pipeline_id: str, **extra: Any) -> dict[str, Any]:
    template = api.ai_template()
    return api.start(
        {
            "pipeline_id": pipeline_id,
            "enrichment_type": "AI_COLUMN",
            "ai_template_id": template["ai_column_template_id"],
            **extra,
        }
    )


# -- cancel ------------------------------------------------------------------------------------


@pytest.fixture
def narrow(leads_settings: Settings, tenants: Tenants) -> Iterator[Api]:
    """Two leads in flight per job."""
    settings = leads_settings.model_copy(update={"leads_job_concurrency": 2})
    with serve(settings) as live, httpx.Client(base_url=live.url, timeout=60) as client:
        yield Api(client, tenants.key("acme"))


def test_cancel_mid_job_keeps_the_finished_leads(
    narrow: Api, leads_settings: Settings, fake: EchoLLM
) -> None:
    api = narrow
    fake.delay = 0.2
    seeded = seed.pipeline(leads_settings, people(20))
    job = ai_job(api, seeded.pipeline_id)
    deadline = time.monotonic() + 20
    while api.progress(job["job_id"])["processed_leads"] < 4:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    cancelled = api.ok(api.post(f"/v1/enrichment/jobs/{job['job_id']}/cancel"))
    assert cancelled["status"] == "CANCELLED"
    time.sleep(1.0)  # what was in flight has come back by now
    asked = len(fake.received)
    after = api.progress(job["job_id"])
    assert after["status"] == "CANCELLED"
    # What the cancel's answer showed is what stays: results that came back after it were
    # dropped, and no lead was started once the worker saw the cancel.
    assert after["processed_leads"] == cancelled["processed_leads"]
    assert after["completed_lead_ids"] == cancelled["completed_lead_ids"]
    assert 4 <= after["processed_leads"] < 20
    # Besides them: those in flight, those waiting for their commit, and those started in
    # their place before the worker saw the cancel (two leads in flight at a time).
    assert asked <= after["processed_leads"] + 3 * 2
    stored = seed.leads(leads_settings, seeded.lead_ids)
    enriched = {lead_id for lead_id, lead in stored.items() if lead["custom_fields"]}
    assert enriched == set(after["completed_lead_ids"])
    for lead_id in enriched:
        company = stored[lead_id]["company"]
        expected = f"Re: Summarize {company} in one sentence."
        assert stored[lead_id]["custom_fields"] == {"Company summary": expected}
    assert seed.counters(leads_settings, seeded.pipeline_id)["enriched_leads"] == len(enriched)
    time.sleep(0.5)
    assert len(fake.received) == asked  # nothing more
    # Cancel is idempotent; a finished job stays as it finished.
    again = api.ok(api.post(f"/v1/enrichment/jobs/{job['job_id']}/cancel"))
    assert again == after
    done = ai_job(api, seeded.pipeline_id, limit=1)
    api.wait(done["job_id"])
    assert api.ok(api.post(f"/v1/enrichment/jobs/{done['job_id']}/cancel"))["status"] == (
        "COMPLETED"
    )


def test_cancel_before_a_worker_took_the_job(
    leads_settings: Settings, tenants: Tenants, fake: EchoLLM
) -> None:
    settings = leads_settings.model_copy(update={"workers_in_serve": False})
    with serve(settings) as live, httpx.Client(base_url=live.url) as client:
        api = Api(client, tenants.key("acme"))
        seeded = seed.pipeline(leads_settings, people(3))
        job = ai_job(api, seeded.pipeline_id)
        assert job["status"] == "PENDING"
        cancelled = api.ok(api.post(f"/v1/enrichment/jobs/{job['job_id']}/cancel"))
        assert (cancelled["status"], cancelled["processed_leads"]) == ("CANCELLED", 0)
        record = api.ok(api.get(f"/v1/enrichment/jobs/{job['job_id']}"))
        assert record["completed_at"] is not None
    assert fake.received == []


# -- events --------------------------------------------------------------------------------------


@dataclass
class Event:
    id: int | None = None
    event: str | None = None
    data: dict[str, Any] | None = None
    retry: int | None = None
    raw: list[str] = field(default_factory=list)


def parse(lines: Iterator[str]) -> Iterator[Event]:
    current = Event()
    for line in lines:
        if line == "":
            if current.raw:
                yield current
            current = Event()
            continue
        current.raw.append(line)
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "id":
            current.id = int(value)
        elif name == "event":
            current.event = value
        elif name == "data":
            current.data = json.loads(value)
        elif name == "retry":
            current.retry = int(value)


def events(api: Api, job_id: str, path: str = "", **headers: str) -> list[Event]:
    with api.client.stream(
        "GET",
        f"/v1/enrichment/jobs/{job_id}/events{path}",
        headers={**api.headers, **headers},
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        return [e for e in parse(response.iter_lines()) if e.event or e.retry is not None]


def test_the_event_stream_live_and_resumed(
    api: Api, leads_settings: Settings, fake: EchoLLM
) -> None:
    fake.delay = 0.1
    seeded = seed.pipeline(leads_settings, people(5))
    job = ai_job(api, seeded.pipeline_id)
    live = events(api, job["job_id"])  # opened while it runs; closes when it ends
    assert live[0].retry == 3000
    seen = [e for e in live if e.event]
    assert [e.id for e in seen] == list(range(1, len(seen) + 1))
    names = [e.event for e in seen]
    assert names[:2] == ["job.created", "job.started"]
    assert names[-1] == "job.completed"
    assert seen[0].data == {
        "job_id": job["job_id"],
        "enrichment_type": "AI_COLUMN",
        "total_leads": 5,
    }
    completed = [e.data for e in seen if e.event == "lead.completed"]
    assert sorted(d["lead_id"] for d in completed if d) == sorted(seeded.lead_ids)
    assert all(set(d["values"]) == {"Company summary"} for d in completed if d)
    assert "job.progress" in names
    progress = [e.data for e in seen if e.event == "job.progress"]
    assert progress[-1] == {
        "processed_leads": 5,
        "failed_leads": 0,
        "skipped_leads": 0,
        "total_leads": 5,
        "progress_percentage": 100.0,
    }
    assert seen[-1].data == {
        "status": "COMPLETED",
        "total_leads": 5,
        "processed_leads": 5,
        "failed_leads": 0,
    }
    # Resumed after event k, by header or by ?after=: exactly the rest.
    k = 3
    rest = [e for e in events(api, job["job_id"], **{"Last-Event-ID": str(k)}) if e.event]
    assert [(e.id, e.event, e.data) for e in rest] == [(e.id, e.event, e.data) for e in seen[k:]]
    by_query = [e for e in events(api, job["job_id"], f"?after={k}") if e.event]
    assert [e.id for e in by_query] == [e.id for e in seen[k:]]
    assert [e for e in events(api, job["job_id"], f"?after={seen[-1].id}") if e.event] == []
    bad = api.client.get(
        f"/v1/enrichment/jobs/{job['job_id']}/events",
        headers={**api.headers, "Last-Event-ID": "soon"},
    )
    assert bad.status_code == 400


def test_a_long_poll_on_progress_wakes_on_the_change(
    api: Api, leads_settings: Settings, fake: EchoLLM
) -> None:
    fake.delay = 0.5
    seeded = seed.pipeline(leads_settings, people(1))
    job = ai_job(api, seeded.pipeline_id)
    asked = time.monotonic()
    finished = api.progress(job["job_id"])
    while finished["status"] not in ("COMPLETED", "FAILED"):
        finished = api.progress(job["job_id"], wait=20)
    assert time.monotonic() - asked < 10
    assert api.get(f"/v1/enrichment/jobs/{job['job_id']}/progress?wait=51").status_code == 400


# -- webhooks ----------------------------------------------------------------------------------


def test_completion_webhooks_through_the_outbox(
    leads_settings: Settings, tenants: Tenants, fake: EchoLLM
) -> None:
    settings = leads_settings.model_copy(
        update={"allow_private_urls": True, "webhook_retry_delays": [0.1, 0.1]}
    )
    with (
        LocalServer(lambda n, r: Reply(status=204)) as receiver,
        serve(settings) as live,
        httpx.Client(base_url=live.url, timeout=60) as client,
    ):
        api = Api(client, tenants.key("acme"))
        hook = api.ok(
            api.post(
                "/api/v1/webhooks",
                {
                    "url": f"{receiver.url}/hooks",
                    "event_types": ["enrichment.completed", "enrichment.cancelled"],
                },
            ),
            201,
        )
        seeded = seed.pipeline(leads_settings, people(2))
        job = ai_job(api, seeded.pipeline_id)
        done = api.wait(job["job_id"])
        [delivery] = receiver.wait_for(1)
        record = api.ok(api.get(f"/v1/enrichment/jobs/{job['job_id']}"))

        fake.delay = 1.0
        slow = ai_job(api, seeded.pipeline_id)
        api.ok(api.post(f"/v1/enrichment/jobs/{slow['job_id']}/cancel"))
        _, cancelled = receiver.wait_for(2)
    message = Webhook(hook["secret"]).verify(delivery.body, delivery.headers)
    assert message["type"] == "enrichment.completed"
    assert message["data"] == record
    assert message["data"]["status"] == done["status"] == "COMPLETED"
    assert message["data"]["processed_leads"] == 2
    assert json.loads(cancelled.body)["type"] == "enrichment.cancelled"
    assert json.loads(cancelled.body)["data"]["job_id"] == slow["job_id"]


# -- jobs side by side ---------------------------------------------------------------------------


def test_two_jobs_on_the_same_leads_keep_each_others_keys(
    api: Api, leads_settings: Settings, fake: EchoLLM
) -> None:
    """An AI and a multi-AI job write into the same leads' custom_fields at once: every
    key survives, and the keys the upload stored too."""
    seeded = seed.pipeline(leads_settings, people(40, custom_fields={"source": "Apollo"}))
    multi = api.ok(
        api.post(
            "/v1/columns/multi-ai-templates",
            {
                "name": "Profile",
                "output_fields": ["city", "size"],
                "prompt_template": "About {{company}}",
                "model": "gpt-4o-mini",
            },
        ),
        201,
    )
    jobs = [
        ai_job(api, seeded.pipeline_id),
        api.start(
            {
                "pipeline_id": seeded.pipeline_id,
                "enrichment_type": "MULTI_AI_COLUMN",
                "multi_ai_template_id": multi["multi_ai_id"],
            }
        ),
        ai_job(api, seeded.pipeline_id),
    ]
    for job in jobs:
        assert api.wait(job["job_id"])["processed_leads"] == 40
    stored = seed.leads(leads_settings, seeded.lead_ids)
    for lead in stored.values():
        assert set(lead["custom_fields"]) == {
            "source",
            "Company summary",
            "Profile: city",
            "Profile: size",
        }
        assert lead["custom_fields"]["Profile: city"] == f"city of About {lead['company']}"
    assert seed.counters(leads_settings, seeded.pipeline_id)["enriched_leads"] == 40


def test_an_idempotency_key_starts_one_job(api: Api, leads_settings: Settings) -> None:
    seeded = seed.pipeline(leads_settings, people(2))
    template = api.ai_template()
    body = {
        "pipeline_id": seeded.pipeline_id,
        "enrichment_type": "AI_COLUMN",
        "ai_template_id": template["ai_column_template_id"],
    }
    answers: list[httpx.Response] = []

    def send() -> None:
        answers.append(api.post("/v1/enrichment/start", body, **{"Idempotency-Key": "nightly-1"}))

    threads = [threading.Thread(target=send) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(a.status_code for a in answers) == [200, 200, 202]
    assert len({a.json()["job_id"] for a in answers}) == 1
    reused = api.post(
        "/v1/enrichment/start", {**body, "limit": 1}, **{"Idempotency-Key": "nightly-1"}
    )
    assert reused.status_code == 409
    assert reused.json()["job_id"] == answers[0].json()["job_id"]
