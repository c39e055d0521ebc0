"""Lead pipelines: an AI_COLUMN enrichment job over 1,000 leads.

    .venv/bin/python bench/lead_enrichment.py [--leads 1000] [--latency 0.1] [--repeat 5]
                                              [--database-url postgresql://…]

`ai_column_job`: a real `openenrich serve` (workers inside), the fake LLM provider in its
own process answering every chat completion after `--latency` seconds, and a pipeline of
`--leads` leads. Each repetition starts an AI_COLUMN job over the whole pipeline and
follows its progress with a long-poll until COMPLETED; the figure is the wall time from the
POST to the long-poll that saw COMPLETED. The ideal is leads x latency / concurrency, where
the concurrency is what the job may have in flight: the smaller of
`OPENENRICH_LEADS_JOB_CONCURRENCY` and the gateway's per-tenant and per-provider limits
(32 by default). Target: within 1.2x the ideal.

The leads are written as rows (`seed_leads`) until the upload endpoint is on this branch;
the upload and export parts of this benchmark live in their own functions beside this one.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from harness import BenchServer, fake_llm

ROOT = Path(__file__).resolve().parents[1]


def database_url(server: BenchServer) -> str:
    return server.database_url or f"sqlite:///{server.data_dir / 'openenrich.db'}"


def seed_leads(server: BenchServer, org: str, count: int) -> str:
    """A pipeline of `count` leads of `org`, written as rows; its id."""
    sys.path.insert(0, str(ROOT / "src"))
    from sqlalchemy import insert

    from openenrich.config import Settings
    from openenrich.db import Database
    from openenrich.ids import new_uuid, utcnow
    from openenrich.leads.models import Lead, LeadAccount, Pipeline, PipelineLead
    from openenrich.tenancy import service

    async def main() -> str:
        settings = Settings(data_dir=server.data_dir, database_url=database_url(server))
        database = Database.from_settings(settings)
        try:
            async with database.session() as session:
                organization = await service.ensure_organization(session, org)
                owner = {"org_id": organization.id, "environment": "live"}
                now = utcnow()
                pipeline_id = new_uuid()
                session.add(
                    Pipeline(
                        id=pipeline_id,
                        name="bench",
                        created_at=now,
                        updated_at=now,
                        total_leads=count,
                        imported_leads=count,
                        **owner,
                    )
                )
                leads: list[dict[str, Any]] = []
                junctions: list[dict[str, Any]] = []
                for n in range(count):
                    moment = now + timedelta(microseconds=n)
                    lead_id = new_uuid()
                    email = f"user{n}@stresstest.example"
                    leads.append(
                        {
                            "id": lead_id,
                            "email": email,
                            "email_key": email,
                            "company": f"Company {n}",
                            "custom_fields": {},
                            "enrichment_status": "NOT_ENRICHED",
                            "created_at": moment,
                            "updated_at": moment,
                            **owner,
                        }
                    )
                    junctions.append(
                        {
                            "id": new_uuid(),
                            "pipeline_id": pipeline_id,
                            "lead_id": lead_id,
                            "stage": "IMPORTED",
                            "created_at": moment,
                            **owner,
                        }
                    )
                await session.flush()
                await session.execute(insert(Lead), leads)
                await session.execute(insert(PipelineLead), junctions)
                session.add(LeadAccount(lead_count=count, **owner))
                await session.commit()
                return pipeline_id
        finally:
            await database.dispose()

    return asyncio.run(main())


def ai_column_job(
    *, leads: int, latency: float, repeat: int, database_url_: str | None
) -> list[float]:
    """Wall seconds per AI_COLUMN job over `leads` leads (see the module's docstring)."""
    with fake_llm(latency) as env, BenchServer(database_url=database_url_, env=env) as server:
        key = server.make_key(org="bench")
        pipeline_id = seed_leads(server, "bench", leads)
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=120) as client:
            template = client.post(
                "/v1/columns/ai-templates",
                json={
                    "name": "Company summary",
                    "prompt_template": "Summarize {{company}} in one sentence.",
                    "model": "gpt-4o-mini",
                },
            ).json()
            body = {
                "pipeline_id": pipeline_id,
                "enrichment_type": "AI_COLUMN",
                "ai_template_id": template["ai_column_template_id"],
            }
            walls = []
            for n in range(repeat):
                cpu = server.cpu_seconds()
                started = time.perf_counter()
                job = client.post("/v1/enrichment/start", json=body).json()
                path = f"/v1/enrichment/jobs/{job['job_id']}/progress?wait=50"
                progress = client.get(path).json()
                while progress["status"] not in ("COMPLETED", "FAILED", "CANCELLED"):
                    progress = client.get(path).json()
                walls.append(time.perf_counter() - started)
                assert progress["status"] == "COMPLETED", progress
                assert progress["processed_leads"] == leads, progress
                assert progress["failed_leads"] == 0, progress
                print(
                    f"  run {n + 1}: {walls[-1]:.2f} s, "
                    f"{(server.cpu_seconds() - cpu) / leads * 1000:.2f} ms server CPU per lead",
                    flush=True,
                )
        return walls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leads", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=32, help="the server's (default 32)")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    ideal = args.leads * args.latency / args.concurrency
    print(f"AI_COLUMN over {args.leads} leads, model latency {args.latency * 1000:.0f} ms")
    walls = ai_column_job(
        leads=args.leads,
        latency=args.latency,
        repeat=args.repeat,
        database_url_=args.database_url,
    )
    median = statistics.median(walls)
    print(
        f"median {median:.2f} s; ideal {ideal:.2f} s ({args.leads} x {args.latency} s / "
        f"{args.concurrency}); {median / ideal:.2f}x the ideal (target <= 1.2x)"
    )


if __name__ == "__main__":
    main()
