"""POST /query: SQL over the tenant's own streams and nothing else."""

from __future__ import annotations

import io

import httpx
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from helpers.server import LiveServer
from helpers.tenants import Tenants, bearer
from openenrich.app import create_app
from openenrich.config import Settings
from openenrich.ids import new_id
from openenrich.streams.models import Stream
from openenrich.tenancy.service import ensure_organization
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


def _strict_stream_with_a_dead_letter(lake: Lake, stream_id: str) -> None:
    assert (
        lake.create(stream_id, schema_mode="strict", fields={"n": {"type": "int64"}}).status_code
        == 201
    )
    assert lake.ingest(stream_id, [{"n": 1}, {"n": "one"}]).json()["rejected"] == 1
    lake.flush(stream_id)


def test_dead_letters_are_views_in_the_dlq_schema(lake: Lake) -> None:
    _strict_stream_with_a_dead_letter(lake, "x")
    assert lake.rows("SELECT reason, field FROM dlq.x") == [["type_mismatch", "n"]]
    # The name docs/api.md promised first still works: no stream can take it.
    assert lake.rows("SELECT reason FROM x_dlq") == [["type_mismatch"]]
    for taken in ("x_dlq", "X_DLQ", "y_Dlq"):
        refused = lake.create(taken)
        assert refused.status_code == 400, refused.text
        assert refused.json() == {
            "error": "stream_id may not end in '_dlq': "
            f"that is how the dead letters of stream '{taken[:-4]}' are queried"
        }
    assert lake.rows("SELECT n FROM x") == [[1]]


def test_a_stream_named_like_dead_letters_before_that_was_refused_keeps_its_name(
    lake: Lake, tenants: Tenants
) -> None:
    async def older_server_made(session: AsyncSession) -> None:
        organization = await ensure_organization(session, "acme")
        session.add(
            Stream(
                id=new_id("stm"),
                org_id=organization.id,
                environment="live",
                stream_id="x_dlq",
                schema_mode="flex",
            )
        )

    tenants.run(older_server_made)
    assert lake.ingest("x_dlq", [{"own": 1}]).status_code == 200
    lake.flush("x_dlq")
    _strict_stream_with_a_dead_letter(lake, "x")
    assert lake.rows("SELECT own FROM x_dlq") == [[1]]
    assert lake.rows("SELECT count(*) FROM dlq.x") == [[1]]
    assert lake.rows("SELECT count(*) FROM dlq.x_dlq") == [[0]]


def test_a_stream_may_be_named_like_the_sandbox_internals(lake: Lake) -> None:
    for stream_id, who in (("__stream_1", "first"), ("b", "second")):
        assert lake.create(stream_id).status_code == 201
        lake.ingest(stream_id, [{"who": who}])
        lake.flush(stream_id)
    assert lake.rows("SELECT who FROM b") == [["second"]]
    assert lake.rows('SELECT who FROM "__stream_1"') == [["first"]]


def test_values_without_a_plain_json_or_csv_form(lake: Lake) -> None:
    sql = "SELECT 170141183460469231731687303715884105727::HUGEINT AS big, 7::HUGEINT AS small"
    # Past 64 bits a JSON number loses digits in most readers: the text keeps them.
    assert lake.rows(f"{sql}, 'ab'::BLOB AS b") == [
        ["170141183460469231731687303715884105727", 7, "6162"]
    ]
    csv = lake.client.post(
        "/query", headers={**lake.headers, "Accept": "text/csv"}, json={"sql": "SELECT [1] AS l"}
    )
    assert csv.status_code == 400
    assert csv.json() == {
        "error": "column 'l' (list<l: int32>) has no CSV form: "
        "ask for JSON or Arrow, or cast it to text"
    }
