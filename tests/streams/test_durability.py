"""A server killed with SIGKILL under load loses no acknowledged event and duplicates none."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import duckdb
import httpx
import pytest

from helpers.processes import ServeProcess
from helpers.tenants import Tenants, bearer
from openenrich.config import Settings

pytestmark = pytest.mark.subprocess

# Small flush thresholds, so files are written (and recovered past) while the load runs.
FLUSHING = {"OPENENRICH_FLUSH_MAX_EVENTS": "3000", "OPENENRICH_FLUSH_MAX_SECONDS": "0.3"}


def test_sigkill_under_load_loses_and_duplicates_nothing(
    settings: Settings, tenants: Tenants, tmp_path: Path
) -> None:
    key = tenants.key("acme")
    data_dir = tmp_path / "serve"
    url = str(settings.database_url)
    acked: set[str] = set()
    attempted = 0
    lock = threading.Lock()
    stop = threading.Event()

    def writer(number: int, base: str) -> None:
        nonlocal attempted
        with httpx.Client(base_url=base, timeout=10) as client:
            batch = 0
            while not stop.is_set():
                seqs = [f"w{number}-b{batch}-e{i}" for i in range(50)]
                batch += 1
                with lock:
                    attempted += len(seqs)
                try:
                    response = client.post(
                        "/ingest",
                        headers=bearer(key),
                        json={
                            "stream_id": "orders",
                            "data": [{"seq": s, "amount": 1.5} for s in seqs],
                        },
                    )
                except httpx.TransportError:
                    return  # the server died under us: this batch's fate is unknown
                if response.status_code == 200:
                    with lock:
                        acked.update(seqs)

    with ServeProcess(data_dir, database_url=url, env=FLUSHING) as server:
        assert (
            httpx.post(
                f"{server.url}/streams", headers=bearer(key), json={"stream_id": "orders"}
            ).status_code
            == 201
        )
        writers = [threading.Thread(target=writer, args=(n, server.url)) for n in range(6)]
        for thread in writers:
            thread.start()
        time.sleep(2.0)
        server.kill()
        stop.set()
        for thread in writers:
            thread.join(timeout=15)
    assert len(acked) > 1000, "the load did not get going"

    with ServeProcess(data_dir, database_url=url, env=FLUSHING) as again:
        flushed = httpx.post(f"{again.url}/streams/orders/flush", headers=bearer(key), timeout=30)
        assert flushed.status_code == 200, flushed.text
        via_api = httpx.post(
            f"{again.url}/query",
            headers=bearer(key),
            json={
                "sql": "SELECT count(*), count(DISTINCT seq), count(DISTINCT _event_id) FROM orders"
            },
            timeout=30,
        ).json()["rows"][0]

    # Every Parquet file on disk, manifest or not: nothing may be there twice.
    lake = data_dir / "lake"
    rows = duckdb.sql(f"SELECT seq, _event_id FROM read_parquet('{lake}/**/*.parquet')").fetchall()
    seqs = [seq for seq, _ in rows]
    assert len(seqs) == len(set(seqs)), "an event was written twice"
    assert len({event_id for _, event_id in rows}) == len(rows)
    missing = acked - set(seqs)
    assert not missing, f"{len(missing)} acknowledged events were lost"
    assert len(seqs) <= attempted
    assert via_api == [len(rows), len(rows), len(rows)]
