"""The LLM gateway's own overhead: structured calls against a fake provider with a fixed
latency, at a fixed concurrency.

    .venv/bin/python bench/llm_gateway.py [--calls 2000] [--concurrency 64] [--latency 0.1]

The fake (tests/fixtures/fake_llm.py) runs in its own process, answering OpenAI chat
completions after `--latency` seconds with a JSON object that matches the schema. Each call
goes through `Gateway.complete()` whole: catalogue, credentials, limits, the OpenAI SDK via
pydantic-ai, JSON Schema validation, cost, the call record. The ideal wall time is
calls x latency / concurrency; overhead is what the gateway adds to it. Repeated
`--repeat` times; the median is reported.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import uvloop

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string"}},
    "required": ["answer"],
    "additionalProperties": False,
}


async def run(url: str, data_dir: Path, calls: int, concurrency: int) -> tuple[float, float]:
    from openenrich.config import Settings
    from openenrich.db import Database, migrate
    from openenrich.llm.gateway import Gateway
    from openenrich.secretbox import load_secret_box
    from openenrich.tenancy.roles import Environment
    from openenrich.tenancy.service import Tenant, create_organization

    settings = Settings(
        data_dir=data_dir,
        provider_openai_api_key="sk-bench",
        provider_openai_base_url=f"{url}/v1",
        llm_provider_concurrency=concurrency,
        llm_tenant_concurrency=concurrency,
    )
    migrate.upgrade(settings.sync_database)
    database = Database.from_settings(settings)
    async with database.session() as session:
        org = await create_organization(session, f"bench-{time.time_ns()}")
        await session.commit()
    tenant = Tenant(org.id, Environment.LIVE)
    gateway = Gateway(settings, database, load_secret_box(settings))
    slots = asyncio.Semaphore(concurrency)

    async def one(n: int) -> None:
        async with slots:
            result = await gateway.complete(
                tenant, "gpt-4o-mini", f"Question {n}", output_schema=SCHEMA
            )
            assert result.value == {"answer": "ok"}

    await asyncio.gather(*(one(n) for n in range(concurrency)))  # warm-up: connections, caches
    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(one(n) for n in range(calls)))
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    await gateway.close()
    await database.dispose()
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    args = parser.parse_args()
    fake = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "tests" / "fixtures" / "fake_llm.py"),
            "--delay",
            str(args.latency),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert fake.stdout is not None
        url = fake.stdout.readline().strip()
        ideal = args.calls * args.latency / args.concurrency
        results = []
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory(prefix="openenrich-bench-") as tmp:
                work = run(url, Path(tmp), args.calls, args.concurrency)
                # asyncio, as `openenrich worker` runs; serve runs on uvicorn's uvloop.
                results.append(uvloop.run(work) if args.loop == "uvloop" else asyncio.run(work))
        for wall, cpu in results:
            print(
                f"  run: wall {wall:.2f} s, {args.calls / wall:.0f} calls/s, overhead "
                f"{wall - ideal:.2f} s ({(wall - ideal) / ideal:.0%} of ideal), "
                f"gateway CPU {cpu / args.calls * 1000:.2f} ms/call"
            )
        wall = statistics.median(r[0] for r in results)
        cpu = statistics.median(r[1] for r in results)
        print(
            f"llm gateway ({args.loop}): {args.calls} structured calls, concurrency {args.concurrency}, "
            f"{args.latency * 1000:.0f} ms provider latency: median wall {wall:.2f} s "
            f"(ideal {ideal:.2f} s), {args.calls / wall:.0f} calls/s, overhead {wall - ideal:.2f} s "
            f"= {(wall - ideal) / ideal:.0%} of ideal (target <= 10%), "
            f"CPU {cpu / args.calls * 1000:.2f} ms per call"
        )
    finally:
        fake.terminate()
        fake.wait()


if __name__ == "__main__":
    main()
