"""The entity surface over HTTP: a fake LLM provider answering each kind of call the
enrichment makes (classification, a whole schema, one expertise group, arbitration) from a
table of "true" values per entity and per model, a saved schema inserted directly, and an
SSE reader with a small state machine of the event vocabulary."""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fixtures.fake_llm import Answer, FakeLLM
from helpers.server import LiveServer
from helpers.tenants import Tenants
from openenrich.app import create_app
from openenrich.config import Settings
from openenrich.entities.models import EntityRecord, EntitySchema, EntitySchemaVersion
from openenrich.ids import new_uuid
from openenrich.tenancy import service

SONNET = "anthropic::claude-sonnet-4-5-20250514"
GPT = "openai::gpt-4o"

COMPANY_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "legal_name": {"type": "string", "x-expertise": "identity"},
        "website": {"type": ["string", "null"], "x-expertise": "identity"},
        "industry": {"type": "string", "x-expertise": "market"},
        "employees": {"type": ["integer", "null"], "x-expertise": "finance"},
        "revenue_usd": {"type": ["number", "null"], "x-expertise": "finance"},
    },
    "required": ["legal_name", "industry"],
}

_FILL_ONLY = re.compile(r"Fill only: ([a-z_, ]+)\.")
# fusion.arbitrate's prompt: "- <field>[: description]", then its numbered candidates.
_DISPUTED = re.compile(r"^- ([a-z_.]+)")
_CANDIDATE = re.compile(r"^  \d+\. (.*) \(\d+ of \d+ models\)$")


def disputed_in(prompt: str) -> dict[str, list[Any]]:
    """The arbiter's question: each disputed field with its candidate values."""
    fields: dict[str, list[Any]] = {}
    current = None
    for line in prompt.split("Disputed fields and their candidate values:", 1)[-1].splitlines():
        if (field := _DISPUTED.match(line)) is not None:
            current = fields.setdefault(field.group(1), [])
        elif (candidate := _CANDIDATE.match(line)) is not None and current is not None:
            current.append(json.loads(candidate.group(1)))
    return fields


def prompt_of(request: dict[str, Any]) -> str:
    """The text of the first user message, whichever wire protocol asked."""
    users = [m for m in request.get("messages", []) if m.get("role") == "user"]
    content = users[0].get("content", "") if users else ""
    if isinstance(content, list):
        return "\n".join(block.get("text", "") for block in content if isinstance(block, dict))
    return str(content)


def entity_of(prompt: str) -> dict[str, Any]:
    for line in prompt.splitlines():
        if line.startswith("Entity (") or line.startswith("Entity: "):
            return dict(json.loads(line.split(": ", 1)[1]))
    return {}


def truth(entity: dict[str, Any]) -> dict[str, Any]:
    name = str(entity.get("name", "unknown"))
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return {
        "legal_name": name,
        "website": f"https://{slug}.example",
        "industry": "Biotech",
        "employees": 100 + len(name),
        "revenue_usd": 1.5e9,
    }


class Oracle(FakeLLM):
    """Answers every call of an enrichment from `truth`, with per-model changes
    (`disagree[model name] = {field: value}`), entities that are not companies
    (`not_companies`), and the arbiter's choices (`arbiter_says`). Counts each kind of call."""

    def __init__(self, delay: float = 0.0) -> None:
        super().__init__(delay=delay)
        self.disagree: dict[str, dict[str, Any]] = {}
        self.not_companies: set[str] = set()
        self.arbiter_says: dict[str, Any] = {}
        self.calls: Counter[str] = Counter()
        self.arbitrations: list[dict[str, Any]] = []
        self.override: Callable[[str, str, dict[str, Any]], Answer | None] | None = None
        self._count_lock = threading.Lock()
        self.responder = self.answer

    def count(self, kind: str) -> None:
        with self._count_lock:
            self.calls[kind] += 1

    def answer(self, model: str, request: dict[str, Any]) -> Answer | None:
        prompt = prompt_of(request)
        if self.override is not None:
            answer = self.override(model, prompt, request)
            if answer is not None:
                return answer
        entity = entity_of(prompt)
        if prompt.startswith("Entity type check"):
            self.count("classify")
            matches = entity.get("name") not in self.not_companies
            return Answer(
                json={"matches": matches, "reason": "a company" if matches else "a person"}
            )
        if "Disputed fields and their candidate values:" in prompt:
            self.count("arbitrate")
            candidates = disputed_in(prompt)
            with self._count_lock:
                self.arbitrations.append(candidates)
            return Answer(json={name: self.arbiter_says.get(name) for name in candidates})
        values = {**truth(entity), **self.disagree.get(model, {})}
        fill_only = _FILL_ONLY.search(prompt)
        if fill_only:
            self.count(f"expertise:{model}")
            names = [name.strip() for name in fill_only.group(1).split(",")]
            return Answer(json={name: values[name] for name in names})
        self.count(f"whole:{model}")
        return Answer(json=values)


@pytest.fixture
def fake() -> Iterator[Oracle]:
    with Oracle() as server:
        yield server


def provider_settings(fake_url: str) -> dict[str, Any]:
    return {
        "provider_openai_api_key": "sk-server-openai",
        "provider_openai_base_url": f"{fake_url}/v1",
        "provider_anthropic_api_key": "sk-ant-server",
        "provider_anthropic_base_url": fake_url,
        "llm_backoff_seconds": 0.01,
        "llm_backoff_max_seconds": 0.5,
    }


@pytest.fixture
def entity_settings(settings: Settings, fake: Oracle) -> Settings:
    return settings.model_copy(
        update={
            **provider_settings(fake.url),
            "job_poll_seconds": 0.2,
            "sse_heartbeat_seconds": 0.5,
        }
    )


def insert_schema(
    tenants: Tenants,
    org: str = "acme",
    json_schema: dict[str, Any] | None = None,
    entity_type: str = "company",
    name: str = "Company profile",
) -> str:
    """A saved schema, inserted directly (until the schemas API is on this branch)."""
    schema_id = new_uuid()

    async def work(session: AsyncSession) -> None:
        organization = await service.ensure_organization(session, org)
        body = json_schema or COMPANY_SCHEMA
        common = {"name": name, "entity_type": entity_type, "json_schema": body}
        session.add(
            EntitySchema(
                id=schema_id,
                org_id=organization.id,
                environment="live",
                version=1,
                **common,
            )
        )
        await session.flush()
        session.add(EntitySchemaVersion(schema_id=schema_id, version=1, change="created", **common))

    tenants.run(work)
    return schema_id


def record_costs(tenants: Tenants, job_id: str) -> list[Decimal]:
    async def work(session: AsyncSession) -> list[Decimal]:
        rows = await session.scalars(select(EntityRecord.cost).where(EntityRecord.job_id == job_id))
        return list(rows)

    return tenants.run(work)


class Api:
    """One key's calls, with the reference's header (X-API-Key)."""

    def __init__(self, client: httpx.Client, key: str) -> None:
        self.client = client
        self.headers = {"X-API-Key": key}

    def post(self, path: str, body: Any = None) -> httpx.Response:
        return self.client.post(path, headers=self.headers, json=body)

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.client.get(path, headers=self.headers, params=params)

    def ok(self, response: httpx.Response, status: int = 200) -> Any:
        assert response.status_code == status, response.text
        return response.json()

    def start(self, path: str, body: dict[str, Any]) -> str:
        return str(self.ok(self.post(path, body))["job_id"])

    def job(self, job_id: str, wait: float = 0) -> dict[str, Any]:
        return dict(self.ok(self.get(f"/api/llm/jobs/{job_id}", wait=wait)))

    def wait_for(self, job_id: str, *statuses: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        job = self.job(job_id)
        while job["status"] not in statuses:
            assert time.monotonic() < deadline, f"job {job_id} stayed {job['status']}"
            job = self.job(job_id, wait=2)
        return job

    def events(self, job_id: str, after: int | None = None) -> list[dict[str, Any]]:
        """The job's events as the reference's client reads them, until `completed`; each
        with its `id` as `_id`."""
        headers = dict(self.headers)
        if after is not None:
            headers["Last-Event-ID"] = str(after)
        events: list[dict[str, Any]] = []
        data: str | None = None
        seq: int | None = None
        with self.client.stream(
            "GET", f"/api/llm/stream/{job_id}", headers=headers, timeout=60
        ) as stream:
            assert stream.status_code == 200
            for line in stream.iter_lines():
                assert not line.startswith("event:"), "no event: lines on this surface"
                if line.startswith("id: "):
                    seq = int(line[4:])
                elif line.startswith("data: "):
                    data = line[6:]
                elif not line and data is not None:
                    event = json.loads(data)
                    event["_id"] = seq
                    events.append(event)
                    data = seq = None
                    if event["type"] == "completed":
                        break
        return events


@pytest.fixture
def live(entity_settings: Settings) -> Iterator[LiveServer]:
    with LiveServer(create_app(entity_settings)) as server:
        yield server


@pytest.fixture
def http(live: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.url, timeout=60) as client:
        yield client


@pytest.fixture
def api(http: httpx.Client, tenants: Tenants) -> Api:
    return Api(http, tenants.key("acme"))


@pytest.fixture
def schema_id(tenants: Tenants) -> str:
    return insert_schema(tenants)


# -- the event vocabulary as a state machine ---------------------------------------------------


def check_order(events: list[dict[str, Any]]) -> None:
    """Events arrive in an order the vocabulary allows: per entity, entity_started, then
    per model model_started → expertise_completed* → model_completed | model_failed, then
    (with two results or more) fusion_started → fusion_completed, then entity_completed;
    `error` only right before `completed`, which is last and once; ids strictly grow."""
    ids = [event["_id"] for event in events]
    assert ids == sorted(set(ids)), ids
    types = [event["type"] for event in events]
    assert types[-1] == "completed", types
    assert types.count("completed") == 1, types
    if "error" in types:
        assert types.index("error") == len(types) - 2, types
    entity: dict[int, str] = {}
    models: dict[int, dict[str, str]] = {}
    for event in events[:-1]:
        kind = event["type"]
        if kind in ("error", "paused", "classification_mismatch", "resumed"):
            continue
        index = event["entity_index"]
        state = entity.get(index)
        running = models.setdefault(index, {})
        if kind == "entity_started":
            assert state != "done", (index, types)
            entity[index] = "started"
            running.clear()
        elif kind == "model_started":
            assert state == "started", event
            assert running.get(event["model"]) != "running", event
            running[event["model"]] = "running"
        elif kind == "expertise_completed":
            assert running.get(event["model"]) == "running", event
        elif kind in ("model_completed", "model_failed"):
            assert running.get(event["model"]) == "running", event
            running[event["model"]] = "done"
        elif kind == "fusion_started":
            assert state == "started", event
            assert "running" not in running.values(), event
            entity[index] = "fusing"
        elif kind == "fusion_completed":
            assert state == "fusing", event
            entity[index] = "fused"
        elif kind == "entity_completed":
            assert state in ("started", "fused"), event
            assert "running" not in running.values(), event
            entity[index] = "done"
        else:
            raise AssertionError(f"not in the vocabulary: {kind}")
    if events[-1]["status"] == "completed":
        assert set(entity.values()) <= {"done"}, entity
