"""`openenrich ingest` of a big NDJSON file: events/s end to end, and a run interrupted
at random then run again, counted with DuckDB.

    .venv/bin/python bench/cli_ingest.py [--lines 1000000] [--runs 3] [--interrupt]

The file holds `ingest.py`'s realistic events (~250 bytes each), one per line. Each run
sends it whole to a new stream of one server (SQLite, workers in serve) with the CLI, as a
user would: a child process, batches under the 1 MiB cap, each with its Idempotency-Key.
Timed: from starting the CLI to its exit (its own start-up included), and then the flush
of what the server had not yet written, so the rate is of events in the lake. With
`--interrupt`, one more run is killed at a random moment and run again: the DuckDB count
of the stream's Parquet rows must equal the file's lines, with no event twice.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import httpx
import orjson

from harness import BenchServer
from ingest import realistic_event


def write_file(path: Path, lines: int) -> None:
    rng = random.Random(7)
    with path.open("wb") as file:
        for n in range(lines):
            file.write(orjson.dumps({**realistic_event(rng, n), "seq": n}) + b"\n")


def cli(server: BenchServer, key: str, path: Path, stream: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "OPENENRICH_URL": server.url, "OPENENRICH_API_KEY": key}
    command = [sys.executable, "-m", "openenrich", "ingest", str(path), "--stream", stream]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)


def flush(server: BenchServer, key: str, stream: str) -> None:
    response = httpx.post(
        f"{server.url}/streams/{stream}/flush",
        headers={"Authorization": f"Bearer {key}"},
        timeout=300,
    )
    response.raise_for_status()


def counted(server: BenchServer, stream: str) -> tuple[int, int]:
    files = f"{server.data_dir}/lake/*/*/{stream}/date=*/*.parquet"
    total, distinct = duckdb.sql(
        f"SELECT count(*), count(DISTINCT seq) FROM read_parquet('{files}')"
    ).fetchall()[0]
    return int(total), int(distinct)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--interrupt", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="openenrich-cli-") as folder:
        path = Path(folder) / "events.ndjson"
        write_file(path, args.lines)
        size = path.stat().st_size
        print(f"{args.lines:,} events, {size / 2**20:.0f} MiB")
        with BenchServer() as server:
            key = server.make_key("bench", role="admin")
            headers = {"Authorization": f"Bearer {key}"}
            rates = []
            for run in range(args.runs):
                stream = f"cli{run}"
                httpx.post(f"{server.url}/streams", headers=headers, json={"stream_id": stream})
                cpu = server.cpu_seconds()
                started = time.perf_counter()
                process = cli(server, key, path, stream)
                output, _ = process.communicate()
                sent = time.perf_counter() - started
                assert process.returncode == 0, output
                flush(server, key, stream)
                elapsed = time.perf_counter() - started
                rates.append(args.lines / elapsed)
                total, distinct = counted(server, stream)
                print(
                    f"  run {run + 1}: {args.lines / elapsed:,.0f} events/s in the lake "
                    f"({sent:.1f} s to send, {elapsed - sent:.1f} s to flush the rest), "
                    f"server CPU {server.cpu_seconds() - cpu:.1f} s; DuckDB: {total:,} rows, "
                    f"{distinct:,} distinct"
                )
            print(f"median {statistics.median(rates):,.0f} events/s")
            if args.interrupt:
                stream = "interrupted"
                httpx.post(f"{server.url}/streams", headers=headers, json={"stream_id": stream})
                process = cli(server, key, path, stream)
                time.sleep(random.uniform(3, 3 + args.lines / 200_000))
                process.kill()
                process.wait()
                again = cli(server, key, path, stream)
                output, _ = again.communicate()
                assert again.returncode == 0, output
                flush(server, key, stream)
                total, distinct = counted(server, stream)
                print(
                    f"interrupted and run again: {total:,} rows, {distinct:,} distinct "
                    f"(the file: {args.lines:,}); {output.decode().strip()}"
                )
                assert total == distinct == args.lines


if __name__ == "__main__":
    main()
