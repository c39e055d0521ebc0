"""POST /query: SQL over the tenant's own streams and nothing else."""

from __future__ import annotations

import io

import httpx
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from helpers.server import LiveServer
from helpers.tenants import Tenants, bearer
from openenrich.app import create_app
from openenrich.config import Settings
from streams.conftest import Lake


@pytest.fixture
def two_tenants(lake: Lake, tenants: Tenants) -> tuple[Lake, Lake]:
    other = Lake(lake.client, tenants.key("globex"))
    for tenant, secret in ((lake, "acme-data"), (other, "globex-secret")):
        tenant.create("events")
        tenant.ingest("events", [{"owner": secret, "n": 1}, {"owner": secret, "n": 2}])
        tenant.flush("events")
    return lake, other


def test_each_stream_is_a_view(two_tenants: tuple[Lake, Lake]) -> None:
    acme, globex = two_tenants
    response = acme.query("SELECT owner, sum(n) AS total FROM events GROUP BY owner")
    assert response.status_code == 200
    body = response.json()
    assert body["rows"] == [["acme-data", 3]]
    assert [c["name"] for c in body["columns"]] == ["owner", "total"]
    assert (body["row_count"], body["truncated"]) == (1, False)
    assert globex.rows("SELECT DISTINCT owner FROM events") == [["globex-secret"]]


def test_csv_and_arrow_answers(two_tenants: tuple[Lake, Lake]) -> None:
    acme, _ = two_tenants
    sql = {"sql": "SELECT owner, n FROM events ORDER BY n"}
    csv = acme.client.post("/query", headers={**acme.headers, "Accept": "text/csv"}, json=sql)
    assert csv.headers["content-type"].startswith("text/csv")
    assert pacsv.read_csv(io.BytesIO(csv.content)).to_pylist() == [
        {"owner": "acme-data", "n": 1},
        {"owner": "acme-data", "n": 2},
    ]
    arrow = acme.client.post(
        "/query",
        headers={**acme.headers, "Accept": "application/vnd.apache.arrow.stream"},
        json=sql,
    )
    table = pa.ipc.open_stream(arrow.content).read_all()
    assert table.column("n").to_pylist() == [1, 2]


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELECT * FROM read_csv('/etc/passwd')", "queries may read only your own streams"),
        ("SELECT * FROM read_text('/etc/passwd')", "queries may read only your own streams"),
        ("SELECT * FROM '/etc/passwd'", None),
        ("SELECT * FROM glob('/*')", "queries may read only your own streams"),
        ("COPY (SELECT 1) TO '/tmp/stolen.csv'", "only SELECT statements are allowed"),
        ("ATTACH '/tmp/other.db'", "only SELECT statements are allowed"),
        ("INSTALL httpfs", "only SELECT statements are allowed"),
        ("LOAD httpfs", "only SELECT statements are allowed"),
        ("SET enable_external_access = true", "only SELECT statements are allowed"),
        ("PRAGMA database_list", "only SELECT statements are allowed"),
        ("CREATE TABLE t AS SELECT 1", "only SELECT statements are allowed"),
        ("SELECT 1; SELECT 2", "send exactly one SQL statement"),
        ("SELEKT 1", None),
        ("", "sql is required"),
    ],
)
def test_the_sandbox_refuses(two_tenants: tuple[Lake, Lake], sql: str, message: str | None) -> None:
    acme, _ = two_tenants
    response = acme.query(sql)
    assert response.status_code == 400, response.text
    if message is not None:
        assert response.json() == {"error": message}
    else:
        assert response.json()["error"].startswith("query failed: ")


def test_another_tenants_folder_is_out_of_reach(
    two_tenants: tuple[Lake, Lake], settings: Settings
) -> None:
    acme, _ = two_tenants
    lake_root = settings.lake
    for sql in (
        f"SELECT * FROM read_parquet('{lake_root}/**/*.parquet')",
        f"SELECT * FROM parquet_scan('{lake_root}/*/live/events/*/*.parquet')",
    ):
        response = acme.query(sql)
        assert response.status_code == 400
        assert response.json() == {"error": "queries may read only your own streams"}
    unknown = acme.query("SELECT * FROM globex_events")
    assert unknown.status_code == 400


def test_row_limit_and_timeout(settings: Settings, tenants: Tenants) -> None:
    tight = settings.model_copy(update={"query_row_limit": 3, "query_timeout_seconds": 0.5})
    key = tenants.key("acme", role="read")  # a read key may query
    with (
        LiveServer(create_app(tight)) as live,
        httpx.Client(base_url=live.url, timeout=30) as client,
    ):
        limited = client.post(
            "/query", headers=bearer(key), json={"sql": "SELECT * FROM range(10)"}
        )
        assert limited.json()["row_count"] == 3
        assert limited.json()["truncated"] is True
        assert limited.headers["X-Result-Truncated"] == "true"
        slow = client.post(
            "/query",
            headers=bearer(key),
            json={
                "sql": "SELECT count(*) FROM range(100000000000) a, range(10) b WHERE a.range % 7 = b.range"
            },
        )
        assert slow.status_code == 400
        assert slow.json() == {"error": "query stopped after 0.5 s (the time limit)"}
        # A read key still cannot write elsewhere.
        assert (
            client.post("/streams", headers=bearer(key), json={"stream_id": "x"}).status_code == 403
        )
