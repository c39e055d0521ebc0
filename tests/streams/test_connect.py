"""`GET /connect`: the SQL and code it hands out run, over the tenant's real files."""

from __future__ import annotations

from typing import Any

import duckdb

from streams.conftest import Lake

ENVELOPE = {
    "timestamp": "2025-02-12T14:32:15Z",
    "source": "payments-app",
    "event": {"transactionId": "txn_30921", "status": "approved", "amount": 499},
    "metadata": {"env": "prod"},
}


def two_seed_streams(lake: Lake) -> None:
    """Seed 000's example stream (a text `event`) and seed 003's envelope stream (a JSON
    `event`), both written to the lake; and a stream nothing was written to yet."""
    lake.create("events")
    page_view = {"event": "page_view", "url": "/pricing", "user_id": "u_1"}
    assert lake.ingest("events", [page_view]).status_code == 200
    lake.create("payments")
    response = lake.client.post(
        "/v1/streams/ingest", headers={**lake.headers, "X-Stream-Id": "payments"}, json=ENVELOPE
    )
    assert response.status_code == 200
    lake.create("quiet")
    lake.flush("events")
    lake.flush("payments")


def test_the_duckdb_sql_reads_every_stream_when_a_column_has_two_types(lake: Lake) -> None:
    two_seed_streams(lake)
    body = lake.client.get("/connect", headers=lake.headers).json()
    sql = body["sql"]["duckdb"]

    db = duckdb.connect()
    example = db.execute(sql).fetchall()  # every statement, as a user pastes it
    assert len(example) == 1
    assert db.sql('SELECT event, url FROM "events"').fetchall() == [("page_view", "/pricing")]
    assert db.sql("""SELECT event->>'$.transactionId', source FROM "payments" """).fetchall() == [
        ("txn_30921", "payments-app")
    ]
    views = {row[0] for row in db.sql("SELECT view_name FROM duckdb_views()").fetchall()}
    assert {"events", "payments"} <= views
    assert "quiet" not in views  # nothing to read yet: no view that would fail


def test_the_python_code_reads_every_stream(lake: Lake) -> None:
    two_seed_streams(lake)
    code = lake.client.get("/connect", headers=lake.headers).json()["sql"]["python"]
    namespace: dict[str, Any] = {}
    exec(code, namespace)  # noqa: S102 - the code we hand out, run as a user would
    tables = namespace["tables"]
    assert set(tables) == {"events", "payments"}
    assert tables["events"].column("event").to_pylist() == ["page_view"]
    assert '"txn_30921"' in tables["payments"].column("event").to_pylist()[0]


def test_a_tenant_without_files_gets_the_pattern_to_fill_in(lake: Lake) -> None:
    body = lake.client.get("/connect", headers=lake.headers).json()
    assert "<stream_id>" in body["sql"]["duckdb"]
    assert "<stream_id>" in body["sql"]["python"]
    assert "/<stream_id>/date=*/*.parquet', 'Parquet')" in body["sql"]["clickhouse"]


def test_clickhouse_local_gets_a_query_per_stream(lake: Lake) -> None:
    two_seed_streams(lake)
    body = lake.client.get("/connect", headers=lake.headers).json()
    queries = body["sql"]["clickhouse"].splitlines()[1:]
    assert [q.split("/")[-3] for q in queries] == ["events", "payments"]
    for query in queries:
        assert query.startswith(f"SELECT * FROM file('{body['path']}/")
        assert query.endswith("SETTINGS schema_inference_mode = 'union';")
