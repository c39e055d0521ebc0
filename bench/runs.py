"""Verification runs: creation latency, long-poll wake-up and SSE delivery delay.

    .venv/bin/python bench/runs.py [--runs 200] [--clients 20] [--tool-ms 100]
                                   [--database-url postgresql://…]

Each client (its own key: the reference's limits are per key) creates runs one after
another. A run names a person and a site: it checks the site (`website_check`, a local
page that answers after `--tool-ms`), screens the person against the sample sanctions list
(`sanctions_screening`), and ends with its report and the report's PDF, as every run
does. The client follows the run until it is terminal, alternately (`--follow split`,
as real clients use one or the other) by its event stream or by long-polling
`GET /runs/{id}?wait=50`; `--follow both` does both for every run. Measured, against the run's `completed_at`
(the server's clock; same machine):
- create: the POST's latency;
- long-poll wake-up: when the long-poll that saw `completed` returned;
- SSE delivery: when the `run.completed` event arrived.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import time
from datetime import datetime

import httpx

from harness import BenchServer
from openenrich.verify.sanctions import sample_list_path


class SlowSite:
    """A page that takes `delay` seconds to answer, on loopback."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.server: asyncio.Server | None = None
        self.port = 0
        self.writers: set[asyncio.StreamWriter] = set()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.add(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if not head:
                    break
                await asyncio.sleep(self.delay)
                body = b"<html><title>Bench</title></html>"
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.writers.discard(writer)
            writer.close()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close the server's keep-alive connections too, so no handler is left to cancel."""
        assert self.server is not None
        self.server.close()
        writers = list(self.writers)
        for writer in writers:
            writer.close()
        await asyncio.gather(*(w.wait_closed() for w in writers), return_exceptions=True)
        await asyncio.sleep(0.05)  # the handlers see the close and return


def parse_time(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


async def one_run(
    client: httpx.AsyncClient, key: str, url: str, follow: str, out: dict[str, list[float]]
) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    started = time.perf_counter()
    created = await client.post(
        "/api/v1/runs",
        headers=headers,
        json={"message": f"Verify Asha Rao: is {url} up?", "workflow": "social-profile-analysis"},
    )
    out["create"].append(time.perf_counter() - started)
    created.raise_for_status()
    run_id = created.json()["id"]

    async def follow_events() -> float:
        async with client.stream(
            "GET", f"/api/v1/runs/{run_id}/events", headers=headers
        ) as response:
            event = None
            async for line in response.aiter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event == "run.completed":
                    return time.time()
        raise RuntimeError("the stream ended without run.completed")

    async def long_poll() -> tuple[float, dict[str, object]]:
        while True:
            response = await client.get(f"/api/v1/runs/{run_id}?wait=50", headers=headers)
            run = response.json()
            if run["status"] in ("completed", "failed", "cancelled", "interrupted"):
                return time.time(), run

    if follow == "both":
        (sse_at, (poll_at, run)) = await asyncio.gather(follow_events(), long_poll())
    elif follow == "sse":
        sse_at = await follow_events()
        run = (await client.get(f"/api/v1/runs/{run_id}", headers=headers)).json()
    else:
        poll_at, run = await long_poll()
    if run["status"] != "completed":
        out["failed"].append(1.0)
        return
    done = parse_time(str(run["completed_at"]))
    if follow in ("both", "long_poll"):
        out["long_poll"].append(poll_at - done)
    if follow in ("both", "sse"):
        out["sse"].append(sse_at - done)
    out["completed"].append(1.0)


async def loop_stalls(out: list[float], every: float = 0.002) -> None:
    """How late this (the client's) event loop wakes up: a check that the client is not
    what the latencies measure."""
    while True:
        before = time.perf_counter()
        await asyncio.sleep(every)
        out.append(time.perf_counter() - before - every)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000


async def load(
    server: BenchServer,
    keys: list[str],
    runs: int,
    tool_ms: int,
    follow: str,
    ramp_up: float = 0.0,
) -> dict[str, list[float]]:
    site = SlowSite(tool_ms / 1000)
    await site.start()
    url = f"http://127.0.0.1:{site.port}/"
    out: dict[str, list[float]] = {
        "create": [],
        "long_poll": [],
        "sse": [],
        "failed": [],
        "completed": [],
    }
    per_client = runs // len(keys)

    async def client_loop(client: httpx.AsyncClient, key: str, start_after: float) -> None:
        await asyncio.sleep(start_after)
        for n in range(per_client):
            how = follow if follow != "split" else ("sse", "long_poll")[n % 2]
            await one_run(client, key, url, how, out)

    # Made before the clock starts: an httpx client builds an SSL context (~30 ms of
    # blocking CPU), which would stall every request in flight in this process.
    clients = [httpx.AsyncClient(base_url=server.url, timeout=120) for _ in keys]
    # The figures are the server's: the client's own collector must not stall its loop (a
    # full collection over what this process imported took ~50 ms, and every request in
    # flight looked 50 ms slower).
    gc.collect()
    gc.freeze()
    gc.disable()
    stalls: list[float] = []
    watch = asyncio.get_running_loop().create_task(loop_stalls(stalls))
    started = time.perf_counter()
    step = ramp_up / len(keys)
    await asyncio.gather(
        *(
            client_loop(c, key, n * step)
            for n, (c, key) in enumerate(zip(clients, keys, strict=True))
        )
    )
    out["elapsed"] = [time.perf_counter() - started]
    watch.cancel()
    gc.enable()
    out["client_stall"] = [max(stalls, default=0.0)]
    for client in clients:
        await client.aclose()
    await site.stop()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--tool-ms", type=int, default=100)
    parser.add_argument("--database-url", default=None)
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="separate `openenrich worker` processes (0: the workers run inside serve)",
    )
    parser.add_argument("--worker-concurrency", type=int, default=20)
    parser.add_argument(
        "--follow",
        choices=("split", "both", "sse", "long_poll"),
        default="split",
        help="how a client follows its run: split (alternately by SSE and by long-poll, "
        "as real clients use one or the other) or both at once for every run",
    )
    parser.add_argument(
        "--ramp-up",
        type=float,
        default=0.2,
        help="seconds over which the clients start, evenly (0: all at the same instant)",
    )
    args = parser.parse_args()
    env = {
        "OPENENRICH_ALLOW_PRIVATE_URLS": "true",
        "OPENENRICH_WORKER_CONCURRENCY": str(args.worker_concurrency),
        "OPENENRICH_WORKERS_IN_SERVE": "false" if args.workers else "true",
        "OPENENRICH_VERIFY_SANCTIONS_LIST": str(sample_list_path()),
    }
    with BenchServer(database_url=args.database_url, env=env) as server:
        for _ in range(args.workers):
            server.start_worker()
        keys = [server.make_key(f"client{n}", role="member") for n in range(args.clients)]
        asyncio.run(load(server, keys, args.clients, args.tool_ms, args.follow))  # warm-up
        cpu = server.cpu_seconds()
        client_cpu = time.process_time()
        out = asyncio.run(load(server, keys, args.runs, args.tool_ms, args.follow, args.ramp_up))
        cpu = server.cpu_seconds() - cpu
        client_cpu = time.process_time() - client_cpu
        rss = server.peak_rss_mib()
    done = len(out["completed"])
    print(
        f"runs: {done} completed of {args.runs} ({len(out['failed'])} not completed), "
        f"{args.clients} clients, a {args.tool_ms} ms check each, "
        f"{done / out['elapsed'][0]:.1f} runs/s, database "
        f"{args.database_url.split(':')[0] if args.database_url else 'sqlite'}, "
        + (f"{args.workers} worker processes, " if args.workers else "workers in serve, ")
        + f"followed by {args.follow}, ramp-up {args.ramp_up} s, peak RSS {rss:.0f} MiB, "
        f"server CPU {cpu / max(done, 1) * 1000:.1f} ms per run, "
        f"the client used {client_cpu / out['elapsed'][0]:.0%} of a core, its loop's "
        f"longest stall {out['client_stall'][0] * 1000:.1f} ms"
    )
    for name, label in (
        ("create", "create latency"),
        ("long_poll", "long-poll wake-up"),
        ("sse", "SSE delivery"),
    ):
        values = out[name]
        if not values:
            continue
        print(
            f"  {label:<20} p50 {percentile(values, 50):7.1f} ms   p99 {percentile(values, 99):7.1f} ms   "
            f"max {max(values) * 1000:7.1f} ms   mean {statistics.mean(values) * 1000:6.1f} ms"
        )


if __name__ == "__main__":
    main()
