"""The LLM gateway's own overhead: structured calls against a fake provider with a fixed
latency, at a fixed concurrency.

    .venv/bin/python bench/llm_gateway.py [--calls 2000] [--concurrency 64] [--latency 0.1]
                                          [--repeat 5] [--loop asyncio|uvloop]

The fake (tests/fixtures/fake_llm.py) runs in its own process, answering OpenAI chat
completions after `--latency` seconds with a JSON object that matches the schema. Each call
goes through `Gateway.complete()` whole: catalogue, credentials, limits, the request built
and sent by `ChatCompletionsModel`, JSON Schema validation, cost, the call record. The ideal
wall time is calls x latency / concurrency; overhead is what the gateway adds to it.

Each repetition also runs the same calls as bare aiohttp POSTs against the same fake (the
"floor"): what loopback, the fake and the event loop cost with no gateway at all. Runs
alternate between the two so that both see the same machine; medians are reported.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import orjson
import uvloop

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string"}},
    "required": ["answer"],
    "additionalProperties": False,
}


@dataclass
class Figures:
    wall: float
    cpu: float  # seconds of this process's CPU, all threads
    latencies: list[float]  # seconds per call


async def measure(calls: int, concurrency: int, call: Callable[[int], Awaitable[None]]) -> Figures:
    slots = asyncio.Semaphore(concurrency)
    latencies: list[float] = []

    async def one(n: int) -> None:
        async with slots:
            started = time.perf_counter()
            await call(n)
            latencies.append(time.perf_counter() - started)

    await asyncio.gather(*(one(n) for n in range(concurrency)))  # warm-up: connections, caches
    latencies.clear()
    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(one(n) for n in range(calls)))
    return Figures(time.perf_counter() - started, time.process_time() - cpu, latencies)


async def through_gateway(url: str, data_dir: Path, calls: int, concurrency: int) -> Figures:
    from openenrich.background import freeze_startup_objects
    from openenrich.config import Settings
    from openenrich.db import Database, migrate
    from openenrich.llm.gateway import Gateway
    from openenrich.secretbox import load_secret_box
    from openenrich.tenancy.roles import Environment
    from openenrich.tenancy.service import create_organization
    from openenrich.tenancy.tenant import Tenant

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
    freeze_startup_objects()  # as `serve` and `worker` do once they have started

    async def call(n: int) -> None:
        result = await gateway.complete(
            tenant, "gpt-4o-mini", f"Question {n}", output_schema=SCHEMA
        )
        assert result.value == {"answer": "ok"}

    try:
        return await measure(calls, concurrency, call)
    finally:
        await gateway.close()
        await database.dispose()


async def bare(url: str, calls: int, concurrency: int) -> Figures:
    """The same calls with no gateway: one aiohttp POST each, the answer decoded."""
    connector = aiohttp.TCPConnector(limit=concurrency)
    headers = {"Content-Type": "application/json", "Authorization": "Bearer sk-bench"}
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def call(n: int) -> None:
            body = {
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": f"Question {n}"}],
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "answer", "schema": SCHEMA},
                },
            }
            async with session.post(f"{url}/v1/chat/completions", data=orjson.dumps(body)) as r:
                answer = orjson.loads(await r.read())
            assert orjson.loads(answer["choices"][0]["message"]["content"]) == {"answer": "ok"}

        return await measure(calls, concurrency, call)


def describe(name: str, runs: list[Figures], ideal: float, calls: int) -> str:
    wall = statistics.median(r.wall for r in runs)
    cpu = statistics.median(r.cpu for r in runs) / calls * 1000
    latencies = sorted(x for r in runs for x in r.latencies)
    p50 = latencies[len(latencies) // 2] * 1000
    p99 = latencies[int(len(latencies) * 0.99)] * 1000
    walls = ", ".join(f"{(r.wall - ideal) / ideal:.0%}" for r in runs)
    return (
        f"{name}: median wall {wall:.2f} s, {calls / wall:.0f} calls/s, overhead "
        f"{wall - ideal:.2f} s = {(wall - ideal) / ideal:.1%} of ideal (runs: {walls}); "
        f"CPU {cpu:.2f} ms per call; latency p50 {p50:.1f} ms, p99 {p99:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    args = parser.parse_args()
    fake = subprocess.Popen(
        [sys.executable, str(ROOT / "tests/fixtures/fake_llm.py"), "--delay", str(args.latency)],
        stdout=subprocess.PIPE,
        text=True,
    )
    # asyncio, as `openenrich worker` runs; serve runs on uvicorn's uvloop.
    run = uvloop.run if args.loop == "uvloop" else asyncio.run
    try:
        assert fake.stdout is not None
        url = fake.stdout.readline().strip()
        ideal = args.calls * args.latency / args.concurrency
        gateway: list[Figures] = []
        floor: list[Figures] = []
        for n in range(args.repeat):
            floor.append(run(bare(url, args.calls, args.concurrency)))
            with tempfile.TemporaryDirectory(prefix="openenrich-bench-") as tmp:
                work = through_gateway(url, Path(tmp), args.calls, args.concurrency)
                gateway.append(run(work))
            print(
                f"  run {n + 1}: gateway {(gateway[-1].wall - ideal) / ideal:.1%} over ideal, "
                f"{gateway[-1].cpu / args.calls * 1000:.2f} ms CPU per call; bare aiohttp "
                f"{(floor[-1].wall - ideal) / ideal:.1%}, {floor[-1].cpu / args.calls * 1000:.2f} ms",
                flush=True,
            )
        print(
            f"{args.calls} structured calls, concurrency {args.concurrency}, "
            f"{args.latency * 1000:.0f} ms provider latency, ideal {ideal:.2f} s, {args.loop}:"
        )
        print("  " + describe("gateway     ", gateway, ideal, args.calls) + " (target <= 10%)")
        print("  " + describe("bare aiohttp", floor, ideal, args.calls))
    finally:
        fake.terminate()
        fake.wait()


if __name__ == "__main__":
    main()
