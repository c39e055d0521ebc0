"""The lead-pipelines surface over HTTP: a tenant's calls as the reference's curl examples
make them (`Leads`, `Api`), a fake LLM provider and a local web site."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from fixtures.fake_llm import Answer, FakeLLM, _openai
from fixtures.site import StaticSite
from helpers.http import Received, Reply
from helpers.server import LiveServer
from helpers.tenants import Tenants, bearer
from openenrich.app import create_app
from openenrich.config import Settings

TERMINAL = ("COMPLETED", "FAILED", "CANCELLED")


class EchoLLM(FakeLLM):
    """The fake provider, answering each chat completion from its own prompt (unless a
    test scripted the answer): `Re: <prompt>` as text, and `<field> of <prompt>` for each
    field a JSON schema asks for. So every lead gets a value of its own. With `about`,
    JSON answers say `<field> of <about>` instead (for prompts too long to assert on)."""

    def __init__(self, *, about: str | None = None, delay: float = 0.0) -> None:
        super().__init__(delay=delay)
        self.about = about

    def _respond(self, number: int, received: Received) -> Reply:
        with self._lock:
            scripted = bool(self._script)
        if scripted or not received.path.endswith("/chat/completions"):
            return super()._respond(number, received)
        request = json.loads(received.body)
        prompt = request["messages"][-1]["content"]
        response_format = request.get("response_format")
        if response_format is not None:
            names = response_format["json_schema"]["schema"]["properties"]
            subject = self.about or prompt
            answer = Answer(json={name: f"{name} of {subject}" for name in names})
        else:
            answer = Answer(text=f"Re: {prompt}")
        body = json.dumps(_openai(request, answer)).encode()
        return Reply(200, body, {"content-type": "application/json"}, self.delay)

    def prompts(self) -> list[str]:
        return [r["messages"][-1]["content"] for r in self.requests()]


@pytest.fixture
def fake() -> Iterator[EchoLLM]:
    with EchoLLM() as server:
        yield server


@pytest.fixture
def site() -> Iterator[StaticSite]:
    with StaticSite() as server:
        yield server


@pytest.fixture
def leads_settings(settings: Settings, fake: EchoLLM, site: StaticSite) -> Settings:
    """Server-wide OpenAI, Gemini and Perplexity keys on the fake; the site (only it) may be
    fetched on loopback; short polls."""
    return settings.model_copy(
        update={
            "provider_openai_api_key": "sk-server-openai",
            "provider_openai_base_url": f"{fake.url}/v1",
            "provider_google_api_key": "google-server",
            "provider_google_base_url": fake.url,
            "provider_perplexity_api_key": "pplx-server",
            "provider_perplexity_base_url": f"{fake.url}/v1",
            "llm_backoff_seconds": 0.01,
            "llm_backoff_max_seconds": 0.5,
            "allowed_private_hosts": [f"127.0.0.1:{site.port}"],
            "job_poll_seconds": 0.2,
            "sse_heartbeat_seconds": 0.3,
        }
    )


class Api:
    """One tenant's client of the surface, as the reference's curl examples use it."""

    def __init__(self, client: httpx.Client, key: str) -> None:
        self.client = client
        self.key = key
        self.headers = bearer(key)

    def post(self, path: str, body: Any = None, **headers: str) -> httpx.Response:
        return self.client.post(path, headers={**self.headers, **headers}, json=body)

    def put(self, path: str, body: Any = None) -> httpx.Response:
        return self.client.put(path, headers=self.headers, json=body)

    def get(self, path: str) -> httpx.Response:
        return self.client.get(path, headers=self.headers)

    def ok(self, response: httpx.Response, status: int = 200) -> Any:
        assert response.status_code == status, response.text
        return response.json()

    def ai_template(self, **changes: Any) -> dict[str, Any]:
        body = {
            "name": "Company summary",
            "prompt_template": "Summarize {{company}} in one sentence.",
            "model": "gpt-4o-mini",
            "max_tokens": 200,
            **changes,
        }
        return self.ok(self.post("/v1/columns/ai-templates", body), 201)

    def start(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.ok(self.post("/v1/enrichment/start", body), 202)

    def progress(self, job_id: str, wait: float = 0) -> dict[str, Any]:
        return self.ok(self.get(f"/v1/enrichment/jobs/{job_id}/progress?wait={wait}"))

    def wait(self, job_id: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            progress = self.progress(job_id, wait=5)
            if progress["status"] in TERMINAL:
                return progress
        raise AssertionError(f"job {job_id} did not finish: {progress}")


def serve(settings: Settings, **changes: Any) -> LiveServer:
    return LiveServer(create_app(settings.model_copy(update=changes)))


@pytest.fixture
def api(leads_settings: Settings, tenants: Tenants) -> Iterator[Api]:
    with (
        serve(leads_settings) as live,
        httpx.Client(base_url=live.url, timeout=60) as client,
    ):
        yield Api(client, tenants.key("acme"))


def people(count: int, **extra: Any) -> list[dict[str, Any]]:
    """`count` leads at distinct companies: lead n works at Company n."""
    return [
        {"email": f"person{n}@example.com", "company": f"Company {n}", **extra}
        for n in range(count)
    ]


class Leads:
    """One key's calls on the surface; each helper asserts the status it expects."""

    def __init__(self, client: httpx.Client, key: str) -> None:
        self.client = client
        self.key = key
        self.headers = bearer(key)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return self.client.request(method, path, headers=headers, **kwargs)

    def create_pipeline(self, name: str = "Q3 outbound", **fields: Any) -> dict[str, Any]:
        answer = self.request("POST", "/v1/pipelines", json={"pipeline_name": name, **fields})
        assert answer.status_code == 201, answer.text
        body: dict[str, Any] = answer.json()
        return body

    def pipeline(self, pipeline_id: str) -> dict[str, Any]:
        answer = self.request("GET", f"/v1/pipelines/{pipeline_id}")
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    def upload_raw(self, pipeline_id: str, rows: Any) -> httpx.Response:
        return self.request(
            "POST",
            f"/v1/pipelines/{pipeline_id}/leads",
            content=json.dumps(rows).encode(),
            headers={"Content-Type": "application/json"},
        )

    def upload(self, pipeline_id: str, rows: Any) -> dict[str, Any]:
        answer = self.upload_raw(pipeline_id, rows)
        assert answer.status_code == 202, answer.text
        body: dict[str, Any] = answer.json()
        return body

    def page(self, pipeline_id: str, **params: Any) -> dict[str, Any]:
        answer = self.request("GET", f"/v1/pipelines/{pipeline_id}/leads", params=params)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body


def addresses(
    count: int, start: int = 0, domain: str = "stresstest.example"
) -> list[dict[str, str]]:
    """The cookbook's rows: `{"email": "user<n>@stresstest.example"}`."""
    return [{"email": f"user{n}@{domain}"} for n in range(start, start + count)]


@pytest.fixture
def leads(client: httpx.Client, tenants: Tenants) -> Leads:
    return Leads(client, tenants.key("acme"))


@pytest.fixture
def other(client: httpx.Client, tenants: Tenants) -> Leads:
    """Another organisation on the same server."""
    return Leads(client, tenants.key("globex"))


@pytest.fixture
def pipeline(leads: Leads) -> str:
    pipeline_id: str = leads.create_pipeline()["pipeline_id"]
    return pipeline_id
