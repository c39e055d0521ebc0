"""Strict, evolve and flex streams, checked against the Parquet files themselves."""

from __future__ import annotations

import duckdb
import pyarrow.parquet as pq
import pytest

from streams.conftest import Lake


def read_parquet(paths: list[str], columns: str = "*") -> list[tuple[object, ...]]:
    db = duckdb.connect()
    listing = ", ".join(f"'{p}'" for p in paths)
    return db.sql(
        f"SELECT {columns} FROM read_parquet([{listing}], union_by_name = true)"
    ).fetchall()


def test_strict_stream_sends_each_bad_kind_to_the_dlq(lake: Lake) -> None:
    lake.create(
        "orders",
        schema_mode="strict",
        fields={"order_id": {"type": "string"}, "amount": {"type": "float64"}},
    )
    events = [
        {"order_id": "o1", "amount": 10.5},
        {"order_id": "o2", "amount": 7},  # an integer is a valid float64
        {"order_id": "o3", "amount": 1.25, "coupon": "XMAS"},  # extra_field
        {"order_id": "o4"},  # missing_field
        {"order_id": "o5", "amount": "12.00"},  # type_mismatch
        {"order_id": "o6", "amount": 3.0},
    ]
    response = lake.ingest("orders", events)
    assert response.status_code == 200
    assert response.json() == {"accepted": 3, "buffered": 3, "rejected": 3}

    dlq = lake.client.get("/streams/orders/dlq", headers=lake.headers).json()
    assert dlq["stream_id"] == "orders"
    assert dlq["dlq_count"] == 3
    by_order = {e["original"]["order_id"]: e for e in dlq["events"]}
    assert {k: (v["reason"], v["field"]) for k, v in by_order.items()} == {
        "o3": ("extra_field", "coupon"),
        "o4": ("missing_field", "amount"),
        "o5": ("type_mismatch", "amount"),
    }
    assert by_order["o3"]["original"] == events[2]
    assert all(e["rejected_at"].endswith("Z") for e in dlq["events"])

    files = lake.flush("orders")["files"]
    data = [f["path"] for f in files if f["kind"] == "data"]
    letters = [f["path"] for f in files if f["kind"] == "dlq"]
    assert all("/orders/date=" in path for path in data)
    assert all("/orders/_dlq/date=" in path for path in letters)
    stored = read_parquet(data, "order_id, amount")
    assert sorted(stored) == [("o1", 10.5), ("o2", 7.0), ("o6", 3.0)]
    assert pq.read_schema(data[0]).field("amount").type == "double"
    rejected = read_parquet(letters, "reason, field, original::JSON->>'$.order_id'")
    assert sorted(rejected) == [
        ("extra_field", "coupon", "o3"),
        ("missing_field", "amount", "o4"),
        ("type_mismatch", "amount", "o5"),
    ]
    # After the flush the DLQ endpoint reads the Parquet files.
    again = lake.client.get("/streams/orders/dlq?days=1&limit=2", headers=lake.headers).json()
    assert again["dlq_count"] == 3
    assert len(again["events"]) == 2
    assert lake.rows("SELECT count(*) FROM orders_dlq") == [[3]]


def test_dead_letters_are_answered_as_sent_even_what_a_parser_refuses(lake: Lake) -> None:
    """1e400 is valid JSON but out of a float's range: the event is refused into the DLQ,
    and the DLQ answers it as sent, from the log and from Parquet, instead of a 500."""
    lake.create("orders", schema_mode="strict", fields={"amount": {"type": "float64"}})
    headers = {**lake.headers, "Content-Type": "application/json"}
    body = b'{"stream_id": "orders", "data": [{"amount": 1e400}, {"amount": 2.5}]}'
    response = lake.client.post("/ingest", headers=headers, content=body)
    assert response.json() == {"accepted": 1, "buffered": 1, "rejected": 1}
    for _ in ("pending", "flushed"):
        dlq = lake.client.get("/streams/orders/dlq", headers=lake.headers)
        assert dlq.status_code == 200, dlq.text
        assert b"1e400" in dlq.content
        assert dlq.json()["events"][0]["original"] == {"amount": float("inf")}
        assert dlq.json()["dlq_count"] == 1
        lake.flush("orders")
    assert lake.rows("SELECT amount FROM orders") == [[2.5]]


def test_strict_types(lake: Lake) -> None:
    lake.create(
        "typed",
        schema_mode="strict",
        fields={
            "s": "string",
            "i": "int64",
            "f": "float64",
            "b": "boolean",
            "t": "timestamp",
            "j": "json",
            "opt": {"type": "string", "required": False},
        },
    )
    good = {
        "s": "x",
        "i": 2**62,
        "f": 1.5,
        "b": True,
        "t": "2026-02-05T10:00:00+01:00",
        "j": {"k": [1]},
    }
    response = lake.ingest(
        "typed",
        [
            good,
            {**good, "opt": "here"},
            {**good, "i": 2**63},  # out of int64
            {**good, "t": "soon"},
            {**good, "b": 1},
            {**good, "j": 5},
        ],
    )
    assert response.json() == {"accepted": 2, "buffered": 2, "rejected": 4}
    (path,) = [f["path"] for f in lake.flush("typed")["files"] if f["kind"] == "data"]
    schema = pq.read_schema(path)
    types = {name: str(schema.field(name).type) for name in schema.names}
    assert types["i"] == "int64"
    assert types["b"] == "bool"
    assert types["t"] == "timestamp[us, tz=UTC]"
    assert types["_ingested_at"] == "timestamp[us, tz=UTC]"
    assert lake.rows(
        "SELECT strftime(t, '%H:%M'), j->>'$.k[0]', opt FROM typed ORDER BY opt NULLS FIRST"
    ) == [
        ["09:00", "1", None],
        ["09:00", "1", "here"],
    ]


def test_flex_keeps_nested_values_and_adds_id_and_ingest_time(lake: Lake) -> None:
    lake.create("clicks")
    lake.ingest(
        "clicks",
        [
            {"event": "click", "props": {"ab": "B", "tags": [1, 2]}, "items": [{"sku": "a"}]},
            {"event": "view", "props": {}, "n": 3},
        ],
    )
    lake.ingest("clicks", [{"event": "scroll", "depth": 0.5}])
    (file,) = lake.flush("clicks")["files"]
    assert file["rows"] == 3
    assert file["path"].endswith(".parquet")
    metadata = pq.read_metadata(file["path"])
    assert metadata.row_group(0).column(0).compression == "ZSTD"
    rows = read_parquet(
        [file["path"]], "event, props, items, n, depth, _event_id, _ingested_at::VARCHAR"
    )
    assert [r[0] for r in rows] == ["click", "view", "scroll"]
    assert rows[0][1] == '{"ab":"B","tags":[1,2]}'
    assert rows[0][2] == '[{"sku":"a"}]'
    ids = [r[5] for r in rows]
    assert len(set(ids)) == 3
    assert ids[0].rsplit("-", 1)[0] == ids[1].rsplit("-", 1)[0] != ids[2].rsplit("-", 1)[0]

    # A later batch with other fields lands in a second file; queries see both.
    lake.ingest("clicks", [{"event": "buy", "amount": 12.5}])
    lake.flush("clicks")
    assert lake.rows(
        "SELECT event, amount, props->>'$.ab' FROM clicks ORDER BY _ingested_at, _event_id"
    ) == [
        ["click", None, "B"],
        ["view", None, None],
        ["scroll", None, None],
        ["buy", 12.5, None],
    ]


def test_a_field_named_like_ours_cannot_spoof_the_event_id(lake: Lake) -> None:
    lake.create("raw")
    lake.client.post(
        "/ingest",
        headers={**lake.headers, "Content-Type": "application/json"},
        content=b'{"stream_id":"raw","data":[{"_event_id":"forged","a":1,"a":2},{}]}',
    )
    lake.flush("raw")
    rows = lake.rows("SELECT a, _event_id FROM raw ORDER BY _event_id")
    assert [r[0] for r in rows] == [2, None]
    assert "forged" not in {r[1] for r in rows}


def test_evolve_records_new_changed_and_missing_fields(lake: Lake) -> None:
    lake.create(
        "erp_events", schema_mode="evolve", fields={"amount": "int64", "currency": "string"}
    )
    lake.ingest("erp_events", [{"amount": 5, "currency": "USD"}, {"amount": 7, "currency": "EUR"}])
    lake.flush("erp_events")
    assert lake.client.get("/streams/erp_events/schema-events", headers=lake.headers).json() == {
        "stream_id": "erp_events",
        "schema_events": [],
    }
    # A new field on 2 events; amount turns into a string on 3; currency stops coming.
    lake.ingest(
        "erp_events",
        [
            {"amount": "12", "discount_code": "X"},
            {"amount": "13", "discount_code": "Y"},
            {"amount": "14"},
        ],
    )
    lake.flush("erp_events")
    history = lake.client.get(
        "/streams/erp_events/schema-events?days=7", headers=lake.headers
    ).json()
    events = {(e["type"], e["field"]): e for e in history["schema_events"]}
    assert set(events) == {
        ("new_field", "discount_code"),
        ("type_change", "amount"),
        ("missing_field", "currency"),
    }
    assert events[("new_field", "discount_code")]["detected_type"] == "string"
    assert events[("new_field", "discount_code")]["event_count"] == 2
    change = events[("type_change", "amount")]
    assert (change["previous_type"], change["detected_type"], change["event_count"]) == (
        "int64",
        "string",
        3,
    )
    missing = events[("missing_field", "currency")]
    assert missing["event_count"] == 3
    assert "detected_type" not in missing
    assert missing["detected_at"].endswith("Z")

    # The counts keep running.
    lake.ingest("erp_events", [{"amount": "15", "discount_code": "Z"}])
    lake.flush("erp_events")
    later = lake.client.get("/streams/erp_events/schema-events", headers=lake.headers).json()
    counts = {(e["type"], e["field"]): e["event_count"] for e in later["schema_events"]}
    assert counts == {
        ("new_field", "discount_code"): 3,
        ("type_change", "amount"): 4,
        ("missing_field", "currency"): 4,
    }
    # Evolve accepts everything: every event is in the lake.
    assert lake.rows("SELECT count(*) FROM erp_events") == [[6]]


def test_evolve_without_declared_fields_takes_the_first_batch_as_baseline(lake: Lake) -> None:
    lake.create("auto", schema_mode="evolve")
    lake.ingest("auto", [{"a": 1, "b": "x"}])
    lake.flush("auto")
    lake.ingest("auto", [{"a": 2, "b": "y", "c": True}])
    lake.flush("auto")
    history = lake.client.get("/streams/auto/schema-events", headers=lake.headers).json()
    assert [(e["type"], e["field"], e.get("detected_type")) for e in history["schema_events"]] == [
        ("new_field", "c", "boolean")
    ]


@pytest.mark.parametrize("flush_between", [False, True], ids=["one_flush", "two_flushes"])
def test_a_field_first_seen_after_the_first_events_is_new_whenever_the_flush_happens(
    lake: Lake, flush_between: bool
) -> None:
    """The first events sent set the baseline of a stream without declared fields; a
    field that first comes later is a new field (and a type that changes later a type
    change), whether or not the lake was written in between."""
    lake.create("checkout", schema_mode="evolve")
    first = {"event": "view", "url": "https://shop.example/a", "ts": 1, "amount": 5}
    assert lake.ingest("checkout", [first, {**first, "ts": 2}]).status_code == 200
    if flush_between:
        lake.flush("checkout")
    later = {"event": "buy", "url": "https://shop.example/b", "ts": 3, "amount": 7.5}
    assert lake.ingest("checkout", [{**later, "discount_code": "X"}, later]).status_code == 200
    lake.flush("checkout")
    history = lake.client.get("/streams/checkout/schema-events", headers=lake.headers).json()
    found = {
        (e["type"], e["field"], e.get("previous_type"), e.get("detected_type"), e["event_count"])
        for e in history["schema_events"]
    }
    assert found == {
        ("new_field", "discount_code", None, "string", 1),
        ("type_change", "amount", "int64", "float64", 2),
    }
    assert lake.rows("SELECT count(*) FROM checkout") == [[4]]


def test_evolve_tracks_field_names_its_table_cannot_hold_as_is(lake: Lake) -> None:
    """Field names are the client's: one longer than the 256 characters the schema tables
    hold, or with a NUL (PostgreSQL text cannot hold one), is recorded cut and replaced, on
    both backends; its events land, and so do the ones after."""
    lake.create("names", schema_mode="evolve")
    lake.ingest("names", [{"a": 1}])
    lake.flush("names")
    long_name = "k" * 300
    assert lake.ingest("names", [{"a": 2, long_name: 1, "n\x00ul": "x"}]).status_code == 200
    lake.flush("names")
    history = lake.client.get("/streams/names/schema-events", headers=lake.headers).json()
    assert {(e["type"], e["field"]) for e in history["schema_events"]} == {
        ("new_field", "k" * 255 + "…"),
        ("new_field", "n\ufffdul"),
    }
    lake.ingest("names", [{"a": 3}])
    lake.flush("names")
    assert lake.rows("SELECT count(*) FROM names") == [[3]]


def test_streams_of_another_tenant_are_not_found(lake: Lake, tenants) -> None:  # type: ignore[no-untyped-def]
    from helpers.tenants import bearer

    lake.create("private")
    lake.ingest("private", [{"secret": 1}])
    other = bearer(tenants.key("globex"))
    for method, path in [
        ("GET", "/streams/private/dlq"),
        ("GET", "/streams/private/schema-events"),
        ("PUT", "/streams/private"),
        ("DELETE", "/streams/private"),
        ("POST", "/streams/private/flush"),
    ]:
        response = lake.client.request(
            method, path, headers=other, json={} if method == "PUT" else None
        )
        assert response.status_code == 404, (method, path)
        assert response.json() == {"error": "Stream 'private' not found"}
    refused = lake.client.post(
        "/ingest", headers=other, json={"stream_id": "private", "data": [{}]}
    )
    assert refused.status_code == 404
    assert lake.client.get("/streams", headers=other).json() == {"streams": []}
