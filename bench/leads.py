"""Lead pipelines: the reference's cookbook at its own scale, against a live server.

    .venv/bin/python bench/leads.py [--runs 5] [--parts upload,export,enrich,validate]
                                    [--postgres | --database-url postgresql://…]

- upload: 20,000 leads in 5 sequential `POST /v1/pipelines/{id}/leads` of 4,000 (the
  cookbook's `jq` bodies, `{"email": "user<n>@stresstest.example"}`), into a new pipeline
  each run. The reference says "under 2 seconds end-to-end"; our targets on two cores:
  ≤ 0.5 s on SQLite, ≤ 1 s on PostgreSQL.
- export: the cookbook's offset loop over that pipeline in pages of 10,000 (per-page
  latency, target ≤ 250 ms; its first page records the walk's mark, the next lists the
  rows at or below it), then the same walk by cursor (`after`), then the whole pipeline
  as one `format=ndjson` stream.

Each run starts a server on a new database (with `--postgres`, a new database on the
PostgreSQL of OPENENRICH_TEST_DATABASE_URL, dropped afterwards); each figure is the
median over the runs.

- enrich: bench/lead_enrichment.py, an AI_COLUMN job over 1,000 leads against a fake model
  answering in 100 ms (target: within 1.2x of 1,000 x 0.1 s / concurrency).
- validate: bench/lead_validation.py, a BOUNCEBAN job over 10,000 leads against loopback
  DNS and SMTP servers (target: >= 1,000 addresses/s).

The jobs' parts are scripts of their own (each starts the fake servers it needs), run
after the others on the same backend; run them alone for their options.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
from sqlalchemy.engine import make_url

from harness import BenchServer

LEADS = 20_000
BATCH = 4_000
PAGE = 10_000


@dataclass
class Run:
    """What one run measured, in seconds, by figure name."""

    figures: dict[str, list[float]] = field(default_factory=dict)

    def add(self, name: str, seconds: float) -> None:
        self.figures.setdefault(name, []).append(seconds)


@dataclass
class Context:
    client: httpx.Client
    server: BenchServer
    run: int
    pipeline_id: str = ""


def cookbook_bodies(run: int) -> list[bytes]:
    """The cookbook's five `jq` batches; each run's addresses are new to the account."""
    return [
        json.dumps(
            [
                {"email": f"user{n}@run{run}.stresstest.example"}
                for n in range(offset, offset + BATCH)
            ]
        ).encode()
        for offset in range(0, LEADS, BATCH)
    ]


def upload(ctx: Context, out: Run) -> None:
    created = ctx.client.post("/v1/pipelines", json={"pipeline_name": f"bench {ctx.run}"})
    created.raise_for_status()
    ctx.pipeline_id = created.json()["pipeline_id"]
    bodies = cookbook_bodies(ctx.run)
    path = f"/v1/pipelines/{ctx.pipeline_id}/leads"
    cpu = ctx.server.cpu_seconds()
    started = time.perf_counter()
    for body in bodies:
        began = time.perf_counter()
        answer = ctx.client.post(path, content=body, headers={"Content-Type": "application/json"})
        out.add("upload call", time.perf_counter() - began)
        assert answer.status_code == 202, answer.text
    out.add("upload 20,000 (5 calls)", time.perf_counter() - started)
    # The server's own CPU (not the database's): steadier than wall time on a shared box.
    out.add("server CPU, upload 20,000", ctx.server.cpu_seconds() - cpu)
    totals = ctx.client.get(f"/v1/pipelines/{ctx.pipeline_id}").json()
    assert totals["total_leads"] == LEADS, totals


def export(ctx: Context, out: Run) -> None:
    path = f"/v1/pipelines/{ctx.pipeline_id}/leads"
    seen = 0
    offset = 0
    started = time.perf_counter()
    while True:  # the cookbook's loop
        began = time.perf_counter()
        cpu = ctx.server.cpu_seconds()
        answer = ctx.client.get(path, params={"limit": PAGE, "offset": offset})
        out.add("offset page of 10,000", time.perf_counter() - began)
        out.add("server CPU, offset page", ctx.server.cpu_seconds() - cpu)
        page = answer.json()
        seen += len(page["data"])
        if not page["pagination"]["has_more"]:
            break
        offset += PAGE
    out.add("offset export, all pages", time.perf_counter() - started)
    assert seen == LEADS, seen

    cursor: str | None = None
    seen = 0
    while True:
        params: dict[str, str | int] = {"limit": PAGE}
        if cursor:
            params["after"] = cursor
        began = time.perf_counter()
        answer = ctx.client.get(path, params=params)
        out.add("cursor page of 10,000", time.perf_counter() - began)
        page = answer.json()
        seen += len(page["data"])
        cursor = page["pagination"]["next_cursor"]
        if cursor is None:
            break
    assert seen == LEADS, seen

    began = time.perf_counter()
    lines = 0
    with ctx.client.stream("GET", path, params={"format": "ndjson"}) as stream:
        for chunk in stream.iter_bytes():
            lines += chunk.count(b"\n")
    out.add("ndjson export, whole pipeline", time.perf_counter() - began)
    assert lines == LEADS, lines


# In the order they run; each may use what the ones before it made (ctx.pipeline_id).
PARTS: dict[str, Callable[[Context, Run], None]] = {
    "upload": upload,
    "export": export,
}
# The jobs' benches, run after those above as scripts of their own (each starts the servers
# it measures against: the fake model; the DNS and SMTP servers), on the same backend.
JOB_PARTS = {"enrich": "lead_enrichment.py", "validate": "lead_validation.py"}


@contextlib.contextmanager
def postgres_database(server_url: str) -> Iterator[str]:
    """A new, empty database on the server of `server_url`, dropped afterwards."""
    url = make_url(server_url).set(drivername="postgresql")
    admin = url.render_as_string(hide_password=False)
    name = f"bench_leads_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    known = [*PARTS, *JOB_PARTS]
    parser.add_argument("--parts", default=",".join(known), help=f"of {', '.join(known)}")
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="a new database on the server of OPENENRICH_TEST_DATABASE_URL",
    )
    parser.add_argument("--database-url", default=None, help="sqlite:///PATH or postgresql://…")
    args = parser.parse_args()
    parts = [name.strip() for name in args.parts.split(",") if name.strip()]
    unknown = [name for name in parts if name not in known]
    if unknown:
        parser.error(f"unknown parts {unknown}; known: {known}")

    if args.postgres and not os.environ.get("OPENENRICH_TEST_DATABASE_URL"):
        parser.error("--postgres needs OPENENRICH_TEST_DATABASE_URL")
    backend = "postgresql" if args.postgres else (args.database_url or "sqlite").split(":")[0]
    served = [name for name in parts if name in PARTS]
    if served:
        measure(args, backend, served)
    for name in parts:
        if name in JOB_PARTS:
            job_bench(args, JOB_PARTS[name])


def job_bench(args: argparse.Namespace, script: str) -> None:
    print(f"\n{script}:", flush=True)
    with contextlib.ExitStack() as stack:
        database_url = args.database_url
        if args.postgres:
            database_url = stack.enter_context(
                postgres_database(os.environ["OPENENRICH_TEST_DATABASE_URL"])
            )
        command = [sys.executable, str(Path(__file__).with_name(script))]
        if database_url:
            command += ["--database-url", database_url]
        subprocess.run(command, check=True)


def measure(args: argparse.Namespace, backend: str, parts: list[str]) -> None:
    runs: list[Run] = []
    for number in range(args.runs):
        # A server on a new database each run: every run uploads into the same empty
        # account, as the reference's figure does, and no run pays for the one before.
        with contextlib.ExitStack() as stack:
            database_url = args.database_url
            if args.postgres:
                database_url = stack.enter_context(
                    postgres_database(os.environ["OPENENRICH_TEST_DATABASE_URL"])
                )
            server = stack.enter_context(BenchServer(database_url=database_url))
            key = server.make_key("bench", role="admin")
            client = stack.enter_context(
                httpx.Client(
                    base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=120
                )
            )
            ctx = Context(client, server, number)
            run = Run()
            for name in parts:
                PARTS[name](ctx, run)
            runs.append(run)
        print(
            f"run {number + 1}: "
            + ", ".join(
                f"{name} {statistics.median(values) * 1000:.0f} ms"
                for name, values in run.figures.items()
            ),
            flush=True,
        )

    print(
        f"\nleads, {backend}, {args.runs} runs (median of the runs' medians; each run's in brackets)"
    )
    for name in runs[0].figures:
        each = [statistics.median(run.figures[name]) * 1000 for run in runs]
        worst = [max(run.figures[name]) * 1000 for run in runs]
        print(
            f"  {name:<32} {statistics.median(each):8.1f} ms   worst of a run "
            f"{statistics.median(worst):8.1f} ms   [{', '.join(f'{v:.0f}' for v in each)}]"
        )


if __name__ == "__main__":
    main()
