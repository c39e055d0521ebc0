"""The stream enrichers over one realistic micro-batch: events/s per enricher and for the
clickstream template (url + user_agent + geo_ip + session), on one core.

The batch: 1,000,000 events, 20,000 distinct URLs (a third with UTM parameters), 500
distinct user agents, 100,000 distinct IPs, 50,000 users over one hour, referrers from a
few dozen sites. Arrow's thread pool is held to one thread so the figure is per core.

Each enricher is timed cold (a new instance: its per-value caches empty, as on the first
batch after a start) and warm (the same instance on the next batch, as in steady state).
The session enricher is timed in `apply`; its `load` and `save` against a migrated SQLite
database (the batch's 50,000 users) are timed apart, since they run in the flush
transaction, not the flush thread.

    .venv/bin/python bench/enrichers.py [--events 1000000] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa

from openenrich.config import Settings
from openenrich.db import Database, migrate
from openenrich.enrichers import registry
from openenrich.enrichers.registry import Enricher, EnricherEnv, StreamScope
from openenrich.enrichers.templates import BUILTIN_TEMPLATES
from openenrich.tenancy import service

BROWSERS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{v}.0.{b}.{p} Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.{v} Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_{v} like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.{v} Mobile/15E{b} Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; SM-S91{v}B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{b}.0.0.{p} Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:12{v}.0) Gecko/20100101 Firefox/12{v}.{p}",
    "Mozilla/5.0 (compatible; Googlebot/2.{v}; +http://www.google.com/bot.html)",
]
REFERRERS = [
    None,
    "https://www.google.com/",
    "https://www.bing.com/search?q=x",
    "https://t.co/abc",
    "https://www.facebook.com/",
    "https://news.ycombinator.com/",
    *(f"https://www.site{i}.com/" for i in range(30)),
]


def batch(events: int, seed: int = 7) -> pa.Table:
    rng = np.random.default_rng(seed)
    urls = pa.array(
        [
            f"https://www.site{i % 300}.com/section/{i % 40}/page-{i}"
            + (
                f"?utm_source=src{i % 7}&utm_medium=cpc&utm_campaign=c{i % 50}"
                if i % 3 == 0
                else ""
            )
            for i in range(20_000)
        ]
    )
    agents = pa.array(
        [BROWSERS[i % len(BROWSERS)].format(v=i % 10, b=1000 + i, p=i % 100) for i in range(500)]
    )
    ips = pa.array(
        [f"{1 + i % 223}.{(i * 7) % 256}.{(i * 13) % 256}.{i % 256}" for i in range(100_000)]
    )
    users = pa.array([f"user-{i}" for i in range(50_000)])
    referrers = pa.array(REFERRERS)
    start_ms = 1_772_366_400_000
    times = np.sort(rng.integers(start_ms, start_ms + 3_600_000, events))
    pick = lambda pool: pool.take(pa.array(rng.integers(0, len(pool), events)))  # noqa: E731
    return pa.table(
        {
            "url": pick(urls),
            "timestamp": pa.array(times),
            "user_id": pick(users),
            "user_agent": pick(agents),
            "ip": pick(ips),
            "referrer": pick(referrers),
        }
    )


def timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def median_rate(events: int, runs: int, work: Callable[[], object]) -> float:
    return events / statistics.median(timed(work) for _ in range(runs))


def build(steps: list[tuple[str, dict[str, object]]], env: EnricherEnv) -> list[Enricher]:
    return [registry.build(name, options, env) for name, options in steps]


def run_all(enrichers: list[Enricher], table: pa.Table) -> None:
    for enricher in enrichers:
        enricher.apply(table)


async def session_state(table: pa.Table, runs: int) -> tuple[float, float]:
    """Median seconds of the session enricher's load and save of one batch's users."""
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(data_dir=Path(folder))
        migrate.upgrade(settings.sync_database)
        database = Database.from_settings(settings)
        async with database.session() as session:
            org = await service.ensure_organization(session, "bench")
            await session.commit()
        scope = StreamScope(org.id, "live", "clicks")
        enricher = registry.build("session", None, EnricherEnv(settings))
        loads, saves = [], []
        for _ in range(runs):
            async with database.session() as session:
                started = time.perf_counter()
                await enricher.load(session, scope, table)
                loads.append(time.perf_counter() - started)
                enricher.apply(table)
                started = time.perf_counter()
                await enricher.save(session, scope)
                await session.commit()
                saves.append(time.perf_counter() - started)
            enricher.committed()
        await database.dispose()
    return statistics.median(loads), statistics.median(saves)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)

    table = batch(args.events)
    env = EnricherEnv(Settings())
    steps = BUILTIN_TEMPLATES["clickstream"].steps
    print(f"{args.events:,} events, medians of {args.runs} runs, one core\n")
    print(f"{'enricher':<24}{'cold events/s':>16}{'warm events/s':>16}")
    for name, options in steps:

        def cold_run(name: str = name, options: dict[str, object] = options) -> object:
            return registry.build(name, options, env).apply(table)

        cold = median_rate(args.events, args.runs, cold_run)
        warm_enricher = registry.build(name, options, env)
        warm_enricher.apply(table)
        warm = median_rate(args.events, args.runs, functools.partial(warm_enricher.apply, table))
        print(f"{name:<24}{cold:>16,.0f}{warm:>16,.0f}")
    cold = median_rate(args.events, args.runs, lambda: run_all(build(steps, env), table))
    warm_enrichers = build(steps, env)
    run_all(warm_enrichers, table)
    warm = median_rate(args.events, args.runs, lambda: run_all(warm_enrichers, table))
    print(f"{'clickstream template':<24}{cold:>16,.0f}{warm:>16,.0f}")

    load, save = asyncio.run(session_state(table, args.runs))
    print(f"\nsession state on SQLite for 50,000 users: load {load:.3f} s, save {save:.3f} s")


if __name__ == "__main__":
    main()
