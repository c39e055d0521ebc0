"""The CLI's client commands against a real server: ingest, query, runs create/follow,
and one line (no traceback) for a wrong key, an unreachable server and a bad file."""

from __future__ import annotations

import csv
import io
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from typer.testing import CliRunner

from helpers.server import LiveServer
from helpers.tenants import Tenants
from openenrich.cli import app
from openenrich.client import Client
from openenrich.config import Settings
from openenrich.streams.models import IngestKey

QUICKSTART = "Verify identity: Rahul Sharma, +91 98xxxxxx10, PAN ABCDE1234F"


@pytest.fixture
def key(tenants: Tenants) -> str:
    return tenants.key("acme")


@pytest.fixture
def cli(server: LiveServer, key: str) -> CliRunner:
    return CliRunner(env={"OPENENRICH_URL": server.url, "OPENENRICH_API_KEY": key})


def count(server: LiveServer, key: str, stream: str) -> int:
    with Client(server.url, key) as client:
        client.streams.flush(stream)
        return int(client.streams.query(f"SELECT count(*) FROM {stream}")["rows"][0][0])


def test_ingest_reads_every_format(
    cli: CliRunner, server: LiveServer, key: str, tmp_path: Path
) -> None:
    events = [{"event": "view", "n": n, "path": f"/p/{n}"} for n in range(300)]
    files = {
        "a.ndjson": "\n".join(json.dumps(e) for e in events) + "\n",
        "b.json": json.dumps(events),
        "c.csv": "event,n,path\n" + "".join(f"view,{e['n']},{e['path']}\n" for e in events),
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    pq.write_table(pa.Table.from_pylist(events), tmp_path / "d.parquet")
    with Client(server.url, key) as client:
        client.streams.create("web")
    for name in [*files, "d.parquet"]:
        result = cli.invoke(app, ["ingest", str(tmp_path / name), "--stream", "web"])
        assert result.exit_code == 0, result.output
        assert "300 events accepted" in result.stdout
    assert count(server, key, "web") == 1_200


def test_query_prints_a_table_csv_or_json(cli: CliRunner, server: LiveServer, key: str) -> None:
    with Client(server.url, key) as client:
        client.streams.create("web")
        client.streams.ingest("web", [{"user": "ann", "n": 1}, {"user": "bob", "n": 2}])
        client.streams.flush("web")
    sql = "SELECT user, n FROM web ORDER BY n"
    table = cli.invoke(app, ["query", sql])
    assert table.exit_code == 0, table.output
    assert "ann" in table.stdout
    assert "bob" in table.stdout
    printed = cli.invoke(app, ["query", sql, "--format", "csv"]).stdout
    assert list(csv.reader(io.StringIO(printed))) == [["user", "n"], ["ann", "1"], ["bob", "2"]]
    lines = cli.invoke(app, ["query", sql, "--format", "json"]).stdout.splitlines()
    assert [json.loads(line) for line in lines] == [
        {"user": "ann", "n": 1},
        {"user": "bob", "n": 2},
    ]


def test_runs_create_wait_and_follow(cli: CliRunner) -> None:
    created = cli.invoke(app, ["runs", "create", QUICKSTART, "--workflow", "kyc-verification"])
    assert created.exit_code == 0, created.output
    run_id = created.stdout.strip()
    assert run_id.startswith("run_")
    followed = cli.invoke(app, ["runs", "follow", run_id])
    assert followed.exit_code == 0, followed.output
    assert "PAN ABCDE1234F is not valid" in followed.stdout
    assert "run completed" in followed.stdout
    waited = cli.invoke(app, ["runs", "create", QUICKSTART, "--wait"])
    assert waited.exit_code == 0, waited.output
    assert "· pan_verification failed" in waited.stdout


def test_errors_are_one_line(server: LiveServer, tmp_path: Path) -> None:
    runner = CliRunner(env={"OPENENRICH_URL": server.url, "OPENENRICH_API_KEY": "sk_live_x"})
    wrong_key = runner.invoke(app, ["query", "SELECT 1"])
    assert wrong_key.exit_code == 1
    assert wrong_key.output.startswith("error: the server refused")
    assert "(401)" in wrong_key.output
    nowhere = CliRunner(env={"OPENENRICH_URL": "http://127.0.0.1:9", "OPENENRICH_API_KEY": "k"})
    unreachable = nowhere.invoke(app, ["query", "SELECT 1"])
    assert unreachable.exit_code == 1
    assert unreachable.output.startswith("error: cannot reach the server")
    broken = tmp_path / "bad.ndjson"
    broken.write_text('{"ok": 1}\nnot json\n')
    bad_file = runner.invoke(app, ["ingest", str(broken), "--stream", "web"])
    assert bad_file.exit_code == 1
    for result in (wrong_key, unreachable, bad_file):
        assert "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1, result.output
    odd = tmp_path / "events.txt"
    odd.write_text("{}")
    assert "--format" in runner.invoke(app, ["ingest", str(odd), "--stream", "web"]).output


@pytest.mark.subprocess
def test_ingest_interrupted_and_run_again_stores_each_event_once(
    server: LiveServer, key: str, settings: Settings, tenants: Tenants, tmp_path: Path
) -> None:
    lines = 100_000
    path = tmp_path / "events.ndjson"
    path.write_text("".join(f'{{"seq": {n}, "path": "/p/{n % 97}"}}\n' for n in range(lines)))
    with Client(server.url, key) as client:
        client.streams.create("web")
    env = {**os.environ, "OPENENRICH_URL": server.url, "OPENENRICH_API_KEY": key}
    command = [sys.executable, "-m", "openenrich", "ingest", str(path), "--stream", "web"]
    command += ["--batch-bytes", "20000"]  # ~250 batches for the kill to fall between

    async def batches_stored(session: AsyncSession) -> int:
        return int(await session.scalar(select(func.count()).select_from(IngestKey)) or 0)

    first = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    wanted = random.randint(5, 60)  # somewhere in the first quarter
    while tenants.run(batches_stored) < wanted and time.monotonic() < deadline:
        time.sleep(0.02)
    first.kill()
    first.wait()
    interrupted_at = tenants.run(batches_stored)
    assert 0 < interrupted_at < 200, "the first run was not interrupted part way"

    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"{lines:,} events accepted" in done.stdout
    with Client(server.url, key) as client:
        client.streams.flush("web")
    lake = settings.data_dir / "lake"
    counted = duckdb.sql(
        f"SELECT count(*), count(DISTINCT seq) FROM read_parquet('{lake}/**/*.parquet')"
    ).fetchall()
    assert counted == [(lines, lines)]


def test_leads_upload_and_export(
    cli: CliRunner, server: LiveServer, key: str, tmp_path: Path
) -> None:
    with Client(server.url, key) as client:
        pipeline = client.leads.create_pipeline("From a CSV")["pipeline_id"]
    path = tmp_path / "leads.csv"
    path.write_text(
        "email,first_name,company\n"
        + "".join(f"lead{n}@example.com,Lead{n},{'Acme' if n % 2 else ''}\n" for n in range(300))
    )
    uploaded = cli.invoke(app, ["leads", "upload", str(path), "--pipeline", pipeline])
    assert uploaded.exit_code == 0, uploaded.output
    assert "300 created, 0 skipped, 0 failed of 300 leads" in uploaded.stdout
    again = cli.invoke(app, ["leads", "upload", str(path), "--pipeline", pipeline])
    assert "0 created, 300 skipped" in again.stdout
    exported = cli.invoke(app, ["leads", "export", "--pipeline", pipeline, "--format", "ndjson"])
    assert exported.exit_code == 0, exported.output
    rows = [json.loads(line) for line in exported.stdout.splitlines()]
    assert len(rows) == 300
    as_csv = cli.invoke(app, ["leads", "export", "--pipeline", pipeline])
    assert len(list(csv.reader(io.StringIO(as_csv.stdout)))) == 301
