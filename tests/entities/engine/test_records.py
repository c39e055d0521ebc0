"""The records API: pagination, filters, text search, detail, batch delete, tenants; and
entities loaded from a URL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from entities.engine.conftest import GPT, SONNET, Api, Oracle, insert_schema, provider_settings
from helpers.http import LocalServer, Received, Reply
from helpers.server import LiveServer
from helpers.tenants import Tenants
from openenrich.app import create_app
from openenrich.config import Settings


def enrich(api: Api, schema_id: str, names: list[str], models: list[str]) -> str:
    job_id = api.start(
        "/api/enrichment/batch/start",
        {
            "entities": [{"name": name} for name in names],
            "schema_id": schema_id,
            "models": models,
            "skip_classification": True,
        },
    )
    api.wait_for(job_id, "completed")
    return job_id


def test_listing_filters_and_search(
    api: Api, http: httpx.Client, tenants: Tenants, schema_id: str, fake: Oracle
) -> None:
    other_schema = insert_schema(tenants)
    enrich(api, schema_id, ["Moderna Inc", "Pfizer Inc", "Roche"], [GPT, SONNET])
    enrich(api, other_schema, ["BioNTech SE"], [GPT])
    everything = api.ok(api.get("/api/records", page_size=100))
    # 3 entities by 2 models, 3 fusions, and 1 more
    assert everything["total"] == 10
    assert (everything["page"], everything["page_size"]) == (1, 100)
    created = [record["created_at"] for record in everything["records"]]
    assert created == sorted(created, reverse=True)
    assert "structured_output" not in everything["records"][0]

    first = api.ok(api.get("/api/records", page_size=4))
    second = api.ok(api.get("/api/records", page_size=4, page=2))
    third = api.ok(api.get("/api/records", page_size=4, page=3))
    ids = [r["id"] for page in (first, second, third) for r in page["records"]]
    assert ids == [r["id"] for r in everything["records"]]
    assert api.ok(api.get("/api/records"))["page_size"] == 20
    assert api.get("/api/records", page_size=101).status_code == 400
    assert api.get("/api/records", page=0).status_code == 400

    def total(**params: object) -> int:
        return int(api.ok(api.get("/api/records", **params))["total"])

    assert total(type="fusion") == 3
    assert total(type="enrichment") == 7
    assert total(schema_id=other_schema) == 1
    assert total(model=SONNET) == 3
    assert total(model="fusion") == 3
    assert total(q="INC") == 6
    assert total(q="roche", type="enrichment") == 2
    assert total(q="%") == 0
    now = datetime.now(UTC)
    assert total(date_from=(now - timedelta(minutes=5)).isoformat()) == 10
    assert total(date_to=(now - timedelta(minutes=5)).isoformat()) == 0

    one = everything["records"][0]
    detail = api.ok(api.get(f"/api/records/{one['id']}"))
    assert detail["structured_output"]["legal_name"] == "BioNTech SE"
    assert detail["entity_data"] == {"name": "BioNTech SE"}

    other = Api(http, tenants.key("globex"))
    assert other.ok(other.get("/api/records"))["total"] == 0
    assert other.get(f"/api/records/{one['id']}").json() == {"detail": "Record not found"}
    assert other.ok(other.post("/api/records/batch-delete", {"ids": [one["id"]]})) == {"deleted": 0}

    too_many = api.post("/api/records/batch-delete", {"ids": [one["id"]] * 101})
    assert too_many.status_code == 400
    assert "100" in too_many.json()["detail"]
    fused = api.ok(api.get("/api/records", type="fusion"))["records"]
    gone = [record["id"] for record in fused] + ["not-a-record"]
    assert api.ok(api.post("/api/records/batch-delete", {"ids": gone})) == {"deleted": 3}
    assert total() == 7
    assert api.get(f"/api/records/{fused[0]['id']}").status_code == 404


ROWS = [{"name": "Acme", "country": "US"}, {"name": "Globex", "country": "DE"}]


class Files(LocalServer):
    def __init__(self) -> None:
        super().__init__(self._file)

    def _file(self, number: int, received: Received) -> Reply:
        path = received.path.split("?")[0]
        if path == "/companies.csv":
            body = "name,country\nAcme,US\nGlobex,DE\n"
            return Reply(body=body.encode(), headers={"content-type": "text/csv"})
        if path == "/companies.json":
            return Reply(
                body=json.dumps(ROWS).encode(), headers={"content-type": "application/json"}
            )
        if path == "/companies.ndjson":
            body = "\n".join(json.dumps(row) for row in ROWS)
            return Reply(body=body.encode(), headers={"content-type": "application/octet-stream"})
        if path == "/big.json":
            rows = [{"name": f"Company {n}"} for n in range(1001)]
            return Reply(
                body=json.dumps(rows).encode(), headers={"content-type": "application/json"}
            )
        return Reply(status=404, body=b"")


@pytest.fixture
def files() -> Iterator[Files]:
    with Files() as server:
        yield server


def test_entities_from_a_url(
    settings: Settings, fake: Oracle, files: Files, tenants: Tenants
) -> None:
    schema_id = insert_schema(tenants)
    allowed = settings.model_copy(
        update={
            **provider_settings(fake.url),
            "allowed_private_hosts": [f"127.0.0.1:{files.port}"],
            "job_poll_seconds": 0.2,
        }
    )
    with (
        LiveServer(create_app(allowed)) as live,
        httpx.Client(base_url=live.url, timeout=30) as http,
    ):
        api = Api(http, tenants.key("acme"))
        for name in ("companies.csv", "companies.json", "companies.ndjson"):
            body = api.ok(api.post("/api/enrichment/batch/fetch", {"url": f"{files.url}/{name}"}))
            assert body == {"entities": ROWS, "count": 2}, name
        forced = api.post(
            "/api/enrichment/batch/fetch",
            {"url": f"{files.url}/companies.ndjson", "format": "json"},
        )
        assert forced.status_code == 400
        big = api.post("/api/enrichment/batch/fetch", {"url": f"{files.url}/big.json"})
        assert big.status_code == 400
        assert "at most 1000" in big.json()["detail"]
        missing = api.post("/api/enrichment/batch/fetch", {"url": f"{files.url}/nothing"})
        assert missing.status_code == 502
        # Only the allowed loopback port: anything else private is refused by the guard.
        blocked = api.post(
            "/api/enrichment/batch/fetch", {"url": f"http://127.0.0.1:{fake.port}/x"}
        )
        assert blocked.status_code == 400
        started = api.ok(
            api.post(
                "/api/enrichment/batch/fetch",
                {
                    "url": f"{files.url}/companies.csv",
                    "start": True,
                    "schema_id": schema_id,
                    "models": [GPT],
                    "skip_classification": True,
                },
            )
        )
        assert started["count"] == 2
        job = api.wait_for(started["job_id"], "completed")
        assert job["completed_entities"] == 2
        fetched = len(files.received)
        unknown = api.post(
            "/api/enrichment/batch/fetch",
            {
                "url": f"{files.url}/companies.csv",
                "start": True,
                "schema_id": schema_id,
                "models": ["openai::gpt-9"],
            },
        )
        assert unknown.status_code == 400
        assert len(files.received) == fetched  # checked before anything was fetched
        without = api.post(
            "/api/enrichment/batch/fetch", {"url": f"{files.url}/companies.csv", "start": True}
        )
        assert without.status_code == 400
