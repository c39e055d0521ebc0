"""Ingest throughput and latency: batches of 100 realistic events into a stream.

    .venv/bin/python bench/ingest.py [--mode flex|strict] [--seconds 20] [--connections 32]
                                     [--runs 3] [--database-url postgresql://…]
                                     [--template clickstream]

With `--template`, the stream is created with that template (processing runs in the flush
thread) and the events carry what `clickstream` reads: `url`, `referrer`, `user_agent`,
`ip`, `user_id` and `timestamp`.

1. Closed loop: `connections` clients send batches as fast as answers come back, for
   `seconds`: the sustained events/s and requests/s, p50/p99.
   Sustained counts landing too: after each run the stream is flushed, and the events
   accepted are divided by the run's seconds plus that flush's (the backlog the flusher
   had not caught up with; a rate only the write-ahead log keeps up with is not sustained).
2. Open loop at half that rate: p50/p99 measured from when each request was due.
3. In both, p99 of the seconds in which a Parquet file was written against the others:
   flushes must not show up in latency.
4. Afterwards: flush, then count the rows of the stream's Parquet files with DuckDB; the
   count must equal the number of events the server accepted.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from pathlib import Path

import duckdb
import httpx

from harness import BenchServer, Results, cycle, http_request, run_load

PAGES = ["/", "/pricing", "/products/{n}", "/cart", "/checkout", "/blog/{n}-ways-to-save"]
EVENTS = ["page_view", "click", "add_to_cart", "purchase", "signup"]
AGENTS = [
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) Safari/605.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) Mobile/15E148",
]
STRICT_FIELDS = {
    "event": "string",
    "user_id": "string",
    "session_id": "string",
    "url": "string",
    "referrer": "string",
    "ts": "int64",
    "ua": "string",
    "country": "string",
    "amount": "float64",
}


def realistic_event(rng: random.Random, n: int) -> dict[str, object]:
    """About 250 bytes of clickstream."""
    page = rng.choice(PAGES).format(n=rng.randint(1, 5000))
    return {
        "event": rng.choice(EVENTS),
        "user_id": f"u_{rng.randint(1, 200_000)}",
        "session_id": f"s_{rng.getrandbits(40):010x}",
        "url": f"https://shop.example.com{page}",
        "referrer": rng.choice(["https://www.google.com/", "https://news.ycombinator.com/", ""]),
        "ts": 1_738_776_000_000 + n,
        "ua": rng.choice(AGENTS),
        "country": rng.choice(["DE", "US", "FR", "IN", "BR"]),
        "amount": round(rng.random() * 300, 2),
    }


def clickstream_event(rng: random.Random, n: int) -> dict[str, object]:
    """The realistic event, with what the clickstream template reads."""
    event = realistic_event(rng, n)
    event["user_agent"] = event.pop("ua")
    event["timestamp"] = event.pop("ts")
    event["ip"] = (
        f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    )
    if rng.random() < 0.3:
        event["url"] = f"{event['url']}?utm_source=newsletter&utm_campaign=c{rng.randint(1, 30)}"
    return event


def bodies(stream: str, count: int, *, template: str | None = None) -> list[bytes]:
    rng = random.Random(7)
    made = []
    make = clickstream_event if template else realistic_event
    for b in range(count):
        batch = [make(rng, b * 100 + i) for i in range(100)]
        made.append(
            json.dumps({"stream_id": stream, "data": batch}, separators=(",", ":")).encode()
        )
    return made


def flush_seconds(lake: Path, started_wall: float, seconds: float) -> set[int]:
    """The seconds of the run in which a Parquet file of the stream was written."""
    marks = set()
    for path in lake.rglob("*.parquet"):
        offset = path.stat().st_mtime - started_wall
        if 0 <= offset < seconds + 1:
            marks.add(int(offset))
    return marks


def p99_by_flush(results: Results, flushed: set[int]) -> tuple[float, float]:
    during = [
        lat
        for lat, at in zip(results.latencies, results.sent_at, strict=True)
        if int(at) in flushed
    ]
    other = [
        lat
        for lat, at in zip(results.latencies, results.sent_at, strict=True)
        if int(at) not in flushed
    ]

    def p99(values: list[float]) -> float:
        return sorted(values)[int(0.99 * (len(values) - 1))] * 1000 if values else float("nan")

    return p99(during), p99(other)


def drained(url: str, stream: str, headers: dict[str, str]) -> float:
    """Seconds to land what is still buffered (a flush of the stream's backlog)."""
    started = time.perf_counter()
    answer = httpx.post(f"{url}/streams/{stream}/flush", headers=headers, timeout=300)
    assert answer.status_code == 200, answer.text
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=["flex", "strict"], default="flex")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--template", default=None, help="e.g. clickstream")
    args = parser.parse_args()

    with BenchServer(database_url=args.database_url) as server:
        key = server.make_key("bench", role="admin")
        headers = {"X-API-Key": key, "Content-Type": "application/json"}
        stream = f"bench_{args.mode}"
        body: dict[str, object] = {"stream_id": stream, "schema_mode": args.mode}
        if args.mode == "strict":
            body["fields"] = STRICT_FIELDS
        if args.template:
            if args.mode == "strict":
                parser.error("--template goes with a flex stream here")
            body["template"] = args.template
        assert httpx.post(f"{server.url}/streams", headers=headers, json=body).status_code == 201
        pool = bodies(stream, 200, template=args.template)
        requests = cycle([http_request("POST", "/ingest", headers, b) for b in pool])
        size = statistics.mean(len(b) for b in pool) / 100
        print(
            f"ingest {args.mode}{' + ' + args.template if args.template else ''}: batches of 100 events (~{size:.0f} bytes each), "
            f"{args.connections} connections, {args.runs} x {args.seconds:.0f} s, "
            f"database {args.database_url.split(':')[0] if args.database_url else 'sqlite'}"
        )
        warm = run_load(server.port, requests, connections=args.connections, seconds=3)
        accepted = warm.statuses[200] * 100
        closed = []
        for _ in range(args.runs):
            wall = time.time()
            result = run_load(
                server.port, requests, connections=args.connections, seconds=args.seconds
            )
            accepted += result.statuses[200] * 100
            during, other = p99_by_flush(
                result, flush_seconds(server.data_dir / "lake", wall, args.seconds)
            )
            # What the flusher has not caught up with yet: sustained means landed too.
            drain = drained(server.url, stream, headers)
            rate = result.statuses[200] * 100 / (result.seconds + drain)
            closed.append((rate, result, during, other))
            print(
                f"  closed loop: {rate:>9,.0f} events/s landed "
                f"({result.ok_per_second * 100:,.0f} accepted, then {drain:.1f} s to land the "
                f"backlog)   p50 {result.percentile(50):6.2f} ms   "
                f"p99 {result.percentile(99):6.2f} ms   p99 in flush seconds {during:6.2f} ms, "
                f"other seconds {other:6.2f} ms   statuses {dict(result.statuses)}"
            )
        peak = statistics.median(rate / 100 for rate, _, _, _ in closed)
        half = peak / 2
        opened = []
        for _ in range(args.runs):
            wall = time.time()
            result = run_load(
                server.port, requests, connections=args.connections, seconds=args.seconds, rate=half
            )
            accepted += result.statuses[200] * 100
            during, other = p99_by_flush(
                result, flush_seconds(server.data_dir / "lake", wall, args.seconds)
            )
            opened.append((result, during, other))
            print(
                f"  open loop at {half * 100:,.0f} events/s: p50 {result.percentile(50):6.2f} ms   "
                f"p99 {result.percentile(99):6.2f} ms   p99 in flush seconds {during:6.2f} ms, "
                f"other seconds {other:6.2f} ms   statuses {dict(result.statuses)}"
            )
        rss = server.peak_rss_mib()
        flushed = httpx.post(f"{server.url}/streams/{stream}/flush", headers=headers, timeout=120)
        assert flushed.status_code == 200, flushed.text
        lake = server.data_dir / "lake"
        ((stored,),) = duckdb.sql(
            f"SELECT count(*) FROM read_parquet('{lake}/*/*/{stream}/date=*/*.parquet')"
        ).fetchall()
        files = len(list(lake.rglob(f"{stream}/date=*/*.parquet")))

    def median(values: list[float]) -> float:
        return statistics.median(values)

    print(
        f"\nmedian of {args.runs} ({args.mode}):\n"
        f"  sustained (landed): {median([rate for rate, _, _, _ in closed]):,.0f} events/s "
        f"(accepted {median([r.ok_per_second * 100 for _, r, _, _ in closed]):,.0f}), "
        f"p50 {median([r.percentile(50) for _, r, _, _ in closed]):.2f} ms, "
        f"p99 {median([r.percentile(99) for _, r, _, _ in closed]):.2f} ms\n"
        f"  at half load ({half * 100:,.0f} events/s): "
        f"p50 {median([r.percentile(50) for r, _, _ in opened]):.2f} ms, "
        f"p99 {median([r.percentile(99) for r, _, _ in opened]):.2f} ms, "
        f"p99 in seconds with a flush {median([d for _, d, _ in opened]):.2f} ms "
        f"vs without {median([o for _, _, o in opened]):.2f} ms\n"
        f"  peak RSS {rss:.0f} MiB; {files} Parquet files\n"
        f"  rows in Parquet (DuckDB): {stored:,}; events accepted: {accepted:,} "
        f"-> {'MATCH' if stored == accepted else 'MISMATCH'}"
    )


if __name__ == "__main__":
    main()
