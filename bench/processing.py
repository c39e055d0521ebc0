"""Stream processing through the flush path: events/s per core for a template.

Logs N clickstream events (realistic distinct counts: URLs, user agents, IPs, users) through
the lake engine's write-ahead log, as ingest does, then times the flush that reads them
into Arrow, runs the stream's template and pipeline, writes the Parquet file and records
the manifest and the enrichers' state. The flusher is one thread (DuckDB and Arrow with one
thread each), so events / flush seconds is events/s per core. The same events are flushed
for a stream without processing too, as the floor.

Each stream is flushed `runs + 1` times in one process, a day of traffic each: the first
flush is cold (the enrichers' caches empty, as after a start) and is shown apart; the
medians are over the warm ones, the steady state of a running server.

    python bench/processing.py [--events 1000000] [--runs 3] [--template clickstream]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa

from openenrich.config import Settings
from openenrich.db import Database
from openenrich.db.migrate import upgrade
from openenrich.jobs.notify import JobHub
from openenrich.streams import configuration, runtime
from openenrich.tenancy import service
from openenrich.tenancy.roles import Environment
from openenrich.tenancy.tenant import Tenant

BROWSERS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{v}.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.{v} Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_{v} like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:{v}.0) Gecko/20100101 Firefox/{v}.0",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html) v{v}",
]
BATCH = 500  # events per logged record, as an ingest request would carry


def clickstream(events: int, seed: int = 7, day: int = 0) -> list[list[dict[str, Any]]]:
    rng = random.Random(seed)
    agents = [rng.choice(BROWSERS).format(v=rng.randint(90, 130)) for _ in range(500)]
    paths = [f"/p/{i}" for i in range(2_000)]
    hosts = ["shop.example.com", "www.example.co.uk", "blog.example.org", "example.io"]
    sources = ["google", "newsletter", "facebook", "", ""]
    urls = []
    for i in range(20_000):
        source = sources[i % len(sources)]
        query = f"?utm_source={source}&utm_medium=cpc&utm_campaign=c{i % 40}" if source else ""
        urls.append(f"https://{hosts[i % len(hosts)]}{paths[i % len(paths)]}{query}")
    ips = [
        f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        for _ in range(100_000)
    ]
    referrers = ["https://www.google.com/", "https://t.co/x", "", "https://shop.example.com/"]
    start = 1_765_000_000_000 + day * 86_400_000  # ms
    batches = []
    for first in range(0, events, BATCH):
        batch = []
        for n in range(first, min(events, first + BATCH)):
            user = rng.randrange(50_000)
            batch.append(
                {
                    "event": "page_view",
                    "url": urls[rng.randrange(len(urls))],
                    "referrer": referrers[n % len(referrers)],
                    "user_agent": agents[user % len(agents)],
                    "ip": ips[user * 2 % len(ips)],
                    "user_id": f"user_{user}",
                    "timestamp": start + n * 60,  # a minute of traffic per 1,000 events
                }
            )
        batches.append(batch)
    return batches


def _lines(batch: list[dict[str, Any]]) -> bytes:
    """A log record's payload as ingest writes it: one event per line."""
    return b"\n".join(orjson.dumps(event) for event in batch)


def main() -> None:
    # Per core: Arrow's compute keeps to one thread, as DuckDB's writer does.
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--template", default="clickstream", help="'' for none")
    parser.add_argument("--pipeline", default=None, help="steps as JSON, after the template")
    args = parser.parse_args()

    print(f"building {args.events:,} clickstream events …", flush=True)
    batches = clickstream(args.events)
    payloads = [(_lines(batch), len(batch)) for batch in batches]
    size = sum(len(p) for p, _ in payloads)
    print(f"{size / 1e6:.0f} MB of JSON in {len(payloads):,} log records")

    pipeline = orjson.loads(args.pipeline) if args.pipeline else None

    def encoded(day: int) -> list[tuple[bytes, int]]:
        return [(_lines(batch), len(batch)) for batch in clickstream(args.events, day=day)]

    label_of = args.template or "pipeline"

    async def run() -> dict[str, list[float]]:
        timings: dict[str, list[float]] = {"plain": [], label_of: []}
        with tempfile.TemporaryDirectory(prefix="openenrich-bench-") as folder:
            settings = Settings(
                data_dir=Path(folder),
                flush_max_events=100_000_000,
                flush_max_bytes=1 << 40,
                flush_max_seconds=86_400,
                buffer_max_bytes=1 << 40,
            )
            upgrade(settings.sync_database)
            database = Database.from_settings(settings)
            try:
                async with database.session() as session:
                    organization = await service.ensure_organization(session, "bench")
                    await session.commit()
                tenant = Tenant(organization.id, Environment.LIVE)
                for label, template in (("plain", None), (label_of, args.template or None)):
                    stream_id = label
                    streams = await runtime.start(settings, database, lambda: JobHub())
                    try:
                        async with database.session() as session:
                            await configuration.create_stream(
                                session,
                                streams.registry,
                                tenant,
                                stream_id=stream_id,
                                template=template,
                                pipeline=pipeline if label != "plain" else None,
                                resources=await streams.processing.resources(session, tenant),
                            )
                            await session.commit()
                        for run_number in range(args.runs + 1):
                            day = payloads if run_number == 0 else encoded(run_number)
                            for payload, count in day:
                                await streams.engine.append(
                                    tenant.org_id, "live", stream_id, "data", payload, count=count
                                )
                            started = time.perf_counter()
                            files = await streams.engine.flush_stream(
                                tenant.org_id, "live", stream_id
                            )
                            elapsed = time.perf_counter() - started
                            rows = sum(file.rows for file in files)
                            assert rows == args.events, (rows, args.events)
                            if run_number:
                                timings[label].append(elapsed)
                            print(
                                f"{'cold' if run_number == 0 else f'run {run_number}'} "
                                f"{label:>12}: {elapsed:6.2f} s  "
                                f"{args.events / elapsed:>10,.0f} events/s",
                                flush=True,
                            )
                    finally:
                        await runtime.stop(streams)
            finally:
                await database.dispose()
        return timings

    timings = asyncio.run(run())
    print()
    for label, values in timings.items():
        median = statistics.median(values)
        print(
            f"{label:>12}: median {median:.2f} s over {len(values)} warm runs = "
            f"{args.events / median:,.0f} events/s per core"
        )
    plain = statistics.median(timings["plain"])
    enriched = statistics.median(timings[label_of])
    print(
        f"{label_of} processing alone: {args.events / max(enriched - plain, 1e-9):,.0f} "
        "events/s per core (the template's time over the plain flush's)"
    )


if __name__ == "__main__":
    main()
