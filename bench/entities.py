"""Entity enrichment: a batch of 500 entities x 2 models x `multi_expertise` with 3 groups.

    .venv/bin/python bench/entities.py [--entities 500] [--latency 0.1] [--repeat 3]
                                       [--database-url postgresql://…]

A real `openenrich serve` (workers inside), the fake LLM provider in its own process
(`tests/fixtures/fake_llm.py --fill-schema`) answering every call after `--latency`
seconds, and a saved schema of 6 fields in 3 expertise groups. Each repetition starts a
batch (`skip_classification`: only the enrichment calls are timed) and follows the job
with a long-poll until it is completed; the figure is the wall time from the POST to the
long-poll that saw it completed. The ideal is calls x latency / concurrency, the calls
being entities x models x groups and the concurrency what the job may have in flight: the
smallest of entities in flight x models x groups (`OPENENRICH_ENTITIES_JOB_CONCURRENCY`,
16 by default), the gateway's per-tenant limit (32) and per-provider limit (64; both
models are OpenAI's here). Target: within 15% of the ideal.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import httpx

from harness import BenchServer, fake_llm

ROOT = Path(__file__).resolve().parents[1]
MODELS = ["openai::gpt-4o", "openai::gpt-4o-mini"]
GROUPS = {"identity": ["legal_name", "website"], "market": ["industry", "segment"]}
GROUPS["finance"] = ["revenue", "funding"]
SCHEMA = {
    "type": "object",
    "properties": {
        name: {"type": "string", "x-expertise": group}
        for group, names in GROUPS.items()
        for name in names
    },
}


def database_url(server: BenchServer) -> str:
    return server.database_url or f"sqlite:///{server.data_dir / 'openenrich.db'}"


def seed_schema(server: BenchServer, org: str) -> str:
    """A saved schema of `org`, written as rows (the schemas API is another part's)."""
    sys.path.insert(0, str(ROOT / "src"))
    from openenrich.config import Settings
    from openenrich.db import Database
    from openenrich.entities.models import EntitySchema, EntitySchemaVersion
    from openenrich.ids import new_uuid
    from openenrich.tenancy import service

    async def main() -> str:
        settings = Settings(data_dir=server.data_dir, database_url=database_url(server))
        database = Database.from_settings(settings)
        try:
            async with database.session() as session:
                organization = await service.ensure_organization(session, org)
                schema_id = new_uuid()
                common = {"name": "Company", "entity_type": "company", "json_schema": SCHEMA}
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
                session.add(
                    EntitySchemaVersion(schema_id=schema_id, version=1, change="created", **common)
                )
                await session.commit()
                return schema_id
        finally:
            await database.dispose()

    return asyncio.run(main())


def batch_job(
    *, entities: int, latency: float, repeat: int, database_url_: str | None
) -> list[float]:
    with (
        fake_llm(latency, "--fill-schema") as env,
        BenchServer(database_url=database_url_, env=env) as server,
    ):
        key = server.make_key(org="bench")
        schema_id = seed_schema(server, "bench")
        body = {
            "entities": [{"name": f"Company {n}", "country": "US"} for n in range(entities)],
            "schema_id": schema_id,
            "models": MODELS,
            "strategy": "multi_expertise",
            "skip_classification": True,
        }
        headers = {"X-API-Key": key}
        walls = []
        with httpx.Client(base_url=server.url, headers=headers, timeout=120) as client:
            for n in range(repeat):
                cpu = server.cpu_seconds()
                started = time.perf_counter()
                job_id = client.post("/api/enrichment/batch/start", json=body).json()["job_id"]
                path = f"/api/llm/jobs/{job_id}?wait=50"
                job = client.get(path).json()
                while job["status"] not in ("completed", "failed", "cancelled"):
                    job = client.get(path).json()
                walls.append(time.perf_counter() - started)
                assert job["status"] == "completed", job
                assert job["completed_entities"] == entities, job
                print(
                    f"  run {n + 1}: {walls[-1]:.2f} s, {entities / walls[-1]:.1f} entities/s, "
                    f"{(server.cpu_seconds() - cpu) / entities * 1000:.2f} ms server CPU "
                    "per entity",
                    flush=True,
                )
        return walls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entities", type=int, default=500)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--in-flight", type=int, default=16, help="the server's entities")
    parser.add_argument("--tenant-limit", type=int, default=32)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    calls = args.entities * len(MODELS) * len(GROUPS)
    concurrency = min(args.in_flight * len(MODELS) * len(GROUPS), args.tenant_limit, 64)
    ideal = calls * args.latency / concurrency
    print(
        f"{args.entities} entities x {len(MODELS)} models x {len(GROUPS)} groups, "
        f"model latency {args.latency * 1000:.0f} ms"
    )
    walls = batch_job(
        entities=args.entities,
        latency=args.latency,
        repeat=args.repeat,
        database_url_=args.database_url,
    )
    median = statistics.median(walls)
    print(
        f"median {median:.2f} s, {args.entities / median:.1f} entities/s; ideal {ideal:.2f} s "
        f"({calls} calls x {args.latency} s / {concurrency}); overhead "
        f"{(median / ideal - 1) * 100:.1f}% over the ideal (target <= 15%)"
    )


if __name__ == "__main__":
    main()
