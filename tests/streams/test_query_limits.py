"""POST /query stays inside its limits: memory, time, result size and queries at once.

The server runs in this process (a thread), so this process's resident memory is the
server's: a query that builds gigabytes must not show up in it."""

from __future__ import annotations

import io
import os
import signal
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.csv as pacsv

from helpers.server import LiveServer
from helpers.tenants import Tenants, bearer
from openenrich.app import create_app
from openenrich.config import Settings

MIB = 1024 * 1024

# 2 GB of 'x': the query that took a server from 0.33 to 4.1 GB.
HUGE_STRING = "SELECT repeat('x', 2000000000) AS s"
# One scalar call DuckDB never interrupts: ~16 s of CPU, ~200 MB, on the machine this was
# written on.
UNINTERRUPTIBLE = (
    "SELECT jaro_winkler_similarity(repeat('ab', 1000000), repeat('ba', 1000000)) AS j"
)


def _status() -> dict[str, int]:
    with Path("/proc/self/status").open() as status:
        return {
            line.split(":")[0]: int(line.split()[1]) * 1024
            for line in status
            if line.startswith(("VmRSS:", "VmHWM:"))
        }


def _reset_peak() -> None:
    # Writing 5 resets VmHWM (the peak resident size) to the current size (Linux >= 4.0).
    Path("/proc/self/clear_refs").write_text("5")


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError:  # the process is gone
        return b""


def _children(parent: int) -> list[int]:
    """The processes whose parent is `parent`, from /proc."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        fields = _read(str(stat)).rpartition(b")")[2].split()
        if fields and int(fields[1]) == parent:
            children.append(int(stat.parent.name))
    return children


def _running_unkilled(pid: int) -> bool:
    """Whether `pid` runs on with no SIGKILL pending: not gone, not a zombie, not exiting."""
    status = _read(f"/proc/{pid}/status").decode()
    stat = _read(f"/proc/{pid}/stat").rpartition(b")")[2].split()
    if not status or not stat:
        return False
    fields = {
        name: value.strip()
        for name, _, value in (line.partition(":") for line in status.splitlines())
    }
    pending = int(fields["SigPnd"], 16) | int(fields["ShdPnd"], 16)
    kill_pending = pending >> (signal.SIGKILL - 1) & 1
    exiting = int(stat[6]) & 0x4  # PF_EXITING: set as the kernel starts ending the process
    return fields["State"][0] not in "ZX" and not kill_pending and not exiting


def _query(client: httpx.Client, key: str, sql: str, accept: str | None = None) -> httpx.Response:
    headers = bearer(key) | ({"Accept": accept} if accept else {})
    return client.post("/query", headers=headers, json={"sql": sql})


def test_queries_that_build_gigabytes_leave_the_server_small(
    settings: Settings, tenants: Tenants
) -> None:
    acme, globex = tenants.key("acme", role="read"), tenants.key("globex", role="read")
    with (
        LiveServer(create_app(settings)) as live,
        httpx.Client(base_url=live.url, timeout=60) as client,
    ):
        assert _query(client, acme, "SELECT 1 AS one").status_code == 200
        before = _status()["VmRSS"]
        _reset_peak()
        with ThreadPoolExecutor(3) as pool:
            answers = list(
                pool.map(lambda key: _query(client, key, HUGE_STRING), (acme, acme, globex))
            )
        growth = _status()["VmHWM"] - before
        for answer in answers:
            assert answer.status_code == 400, answer.text
            assert answer.json()["error"].startswith(
                "query stopped: it needs more memory than the limit ("
            )
        # Unbounded, this grew by ~4 GB per query.
        assert growth < 150 * MIB, f"the server grew by {growth / MIB:.0f} MiB"
        # and it still answers
        assert _query(client, acme, "SELECT 2 AS two").json()["rows"] == [[2]]


def test_a_query_past_the_time_limit_stops_within_a_second(
    settings: Settings, tenants: Tenants
) -> None:
    key = tenants.key("acme", role="read")
    tight = settings.model_copy(update={"query_timeout_seconds": 1.0})
    with (
        LiveServer(create_app(tight)) as live,
        httpx.Client(base_url=live.url, timeout=60) as client,
    ):
        # The first query also starts the process queries are forked from.
        assert _query(client, key, "SELECT 1 AS one").status_code == 200
        hosts = [
            pid
            for pid in _children(os.getpid())
            if b"openenrich.lake.query import host" in _read(f"/proc/{pid}/cmdline")
        ]
        assert len(hosts) == 1
        answer = _query(client, key, UNINTERRUPTIBLE)
        # The answer is the time limit's, which comes only from the watchdog, when the
        # limit has passed with no result...
        assert answer.status_code == 400, answer.text
        assert answer.json() == {"error": "query stopped after 1 s (the time limit)"}
        # ...and the query was stopped, not left to run on (it needs ~16 s of CPU): no
        # query process of the host's is still running without a kill on its way.
        assert [pid for pid in _children(hosts[0]) if _running_unkilled(pid)] == []


def test_results_stop_at_the_byte_limit(settings: Settings, tenants: Tenants) -> None:
    key = tenants.key("acme", role="read")
    limit = 100_000
    small = settings.model_copy(update={"query_result_max_bytes": limit})
    sql = "SELECT range AS n, repeat('x', 1000) AS s FROM range(1000) ORDER BY n"
    with (
        LiveServer(create_app(small)) as live,
        httpx.Client(base_url=live.url, timeout=60) as client,
    ):
        answer = _query(client, key, sql)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["truncated"] is True
        assert body["truncated_by"] == "bytes"
        assert 50 < body["row_count"] < 100
        assert [row[0] for row in body["rows"]] == list(range(body["row_count"]))
        assert len(answer.content) < limit + 1000
        assert answer.headers["X-Result-Truncated"] == "true"
        assert answer.headers["X-Result-Truncated-By"] == "bytes"

        csv = _query(client, key, sql, accept="text/csv")
        assert csv.headers["X-Result-Truncated-By"] == "bytes"
        assert len(csv.content) <= limit
        rows = pacsv.read_csv(io.BytesIO(csv.content)).column("n").to_pylist()
        assert rows == list(range(len(rows)))
        assert len(rows) > 50

        arrow = _query(client, key, sql, accept="application/vnd.apache.arrow.stream")
        assert arrow.headers["X-Result-Truncated-By"] == "bytes"
        assert len(arrow.content) <= limit
        table = pa.ipc.open_stream(arrow.content).read_all()
        assert table.column("n").to_pylist() == list(range(table.num_rows))
        assert table.num_rows > 50

        # One row larger than the limit: an empty answer that says why.
        single = _query(client, key, "SELECT repeat('x', 200000) AS s").json()
        assert (single["row_count"], single["truncated"], single["truncated_by"]) == (
            0,
            True,
            "bytes",
        )
        untouched = _query(client, key, "SELECT 1 AS one")
        assert (untouched.json()["truncated"], untouched.json()["truncated_by"]) == (False, None)
        assert untouched.headers["X-Result-Truncated"] == "false"
        assert "X-Result-Truncated-By" not in untouched.headers


def test_the_row_limit_says_so(settings: Settings, tenants: Tenants) -> None:
    key = tenants.key("acme", role="read")
    with (
        LiveServer(create_app(settings.model_copy(update={"query_row_limit": 3}))) as live,
        httpx.Client(base_url=live.url, timeout=60) as client,
    ):
        body = _query(client, key, "SELECT * FROM range(10)").json()
        assert (body["row_count"], body["truncated"], body["truncated_by"]) == (3, True, "rows")


def _statuses(answers: list[httpx.Response]) -> list[int]:
    return sorted(answer.status_code for answer in answers)


def test_queries_at_once_are_capped_per_tenant_and_per_server(
    settings: Settings, tenants: Tenants
) -> None:
    acme, globex = tenants.key("acme", role="read"), tenants.key("globex", role="read")
    capped = settings.model_copy(
        update={
            "query_timeout_seconds": 4.0,
            "query_tenant_concurrency": 2,
            "query_concurrency": 3,
        }
    )
    with (
        LiveServer(create_app(capped)) as live,
        httpx.Client(base_url=live.url, timeout=60) as client,
        ThreadPoolExecutor(5) as pool,
    ):
        # Three at once from one tenant: two run (to the time limit), one is refused.
        first = [pool.submit(_query, client, acme, UNINTERRUPTIBLE) for _ in range(3)]
        refused = next(as_completed(first)).result()
        assert refused.status_code == 429, refused.text
        assert refused.json() == {"error": "Too many queries at once: at most 2 per tenant"}
        assert refused.headers["Retry-After"] == "1"
        # While those two run, another tenant gets the server's last slot, and no more.
        second = [pool.submit(_query, client, globex, UNINTERRUPTIBLE) for _ in range(2)]
        full = next(as_completed(second)).result()
        assert full.status_code == 503, full.text
        assert full.json() == {
            "error": "The server is running all the queries it can (3); retry shortly"
        }
        assert full.headers["Retry-After"] == "1"
        answers = [future.result() for future in first + second]
        assert _statuses(answers) == [400, 400, 400, 429, 503]
        for answer in answers:
            if answer.status_code == 400:
                assert answer.json() == {"error": "query stopped after 4 s (the time limit)"}
        # Slots are given back when queries end, however they end.
        assert _query(client, acme, "SELECT 1 AS one").status_code == 200
        assert _query(client, globex, "SELECT 1 AS one").status_code == 200
