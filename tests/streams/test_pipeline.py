"""A stream's pipeline over HTTP: checked when saved, run when its events are flushed."""

from __future__ import annotations

from typing import Any

import pytest

from streams.conftest import Lake


def events(count: int) -> list[dict[str, Any]]:
    return [
        {
            "user_id": f"u{i % 50}",
            "level": "debug" if i % 4 == 0 else ("error" if i % 4 == 1 else "info"),
            "n": i,
        }
        for i in range(count)
    ]


def test_filter_and_sample_keep_the_rows_they_should(lake: Lake) -> None:
    response = lake.create(
        "app",
        pipeline=[
            {"type": "filter", "where": "level <> 'debug'"},
            {"type": "sample", "rate": 0.5, "by": "user_id"},
        ],
    )
    assert response.status_code == 201, response.text
    assert response.json()["pipeline"][0] == {"type": "filter", "where": "level <> 'debug'"}
    sent = events(400)
    assert lake.ingest("app", sent[:200]).status_code == 200
    lake.flush("app")
    assert lake.ingest("app", sent[200:]).status_code == 200
    lake.flush("app")

    rows = lake.rows("SELECT user_id, level, n FROM app ORDER BY n")
    assert all(level != "debug" for _, level, _ in rows)
    users = {user for user, _, _ in rows}
    # A sampled user is all in, in both batches: every one of its non-debug events is kept.
    expected = [e for e in sent if e["level"] != "debug" and e["user_id"] in users]
    assert [n for _, _, n in rows] == [e["n"] for e in expected]
    assert 10 <= len(users) <= 40  # about half of 50 users


def test_route_to_the_lake_only_keeps_matching_and_unmatched_rows(lake: Lake) -> None:
    response = lake.create(
        "routed",
        pipeline=[{"type": "route", "rules": [{"when": "level = 'error'", "to": ["lake"]}]}],
    )
    assert response.status_code == 201, response.text
    assert lake.ingest("routed", events(8)).status_code == 200
    lake.flush("routed")
    assert lake.rows("SELECT count(*) FROM routed") == [[8]]


@pytest.mark.parametrize(
    ("pipeline", "message"),
    [
        ("filter", "pipeline must be an array of steps"),
        ([{"type": "explode"}], "pipeline[0]: type must be one of"),
        ([{"where": "x"}], "pipeline[0]: each step needs a type"),
        ([{"type": "filter"}], "pipeline[0].where: Field required"),
        ([{"type": "filter", "where": "level = "}], "pipeline[0].where: syntax error"),
        ([{"type": "filter", "where": "(SELECT 1)"}], "may not contain a subquery"),
        ([{"type": "filter", "where": "random() < 0.5"}], "random() gives another answer"),
        ([{"type": "sample", "rate": 0}], "pipeline[0].rate: Input should be greater than 0"),
        ([{"type": "sample", "rate": 1.5}], "pipeline[0].rate: Input should be less than"),
        (
            [
                {"type": "route", "rules": [{"when": "true", "to": ["lake"]}]},
                {"type": "sample", "rate": 0.5},
            ],
            "pipeline[0]: route must be the last step",
        ),
        ([{"type": "enrich", "template": "nope"}], "pipeline[0]: Template 'nope' not found"),
        ([{"type": "enrich"}], "pipeline[0]: an enrich step names a template or an enricher"),
        ([{"type": "mask", "method": "redact"}], "pipeline[0]: a mask step names fields"),
    ],
)
def test_a_bad_pipeline_is_refused_with_the_reason(lake: Lake, pipeline: Any, message: str) -> None:
    response = lake.create("bad", pipeline=pipeline)
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]
    assert lake.client.get("/streams", headers=lake.headers).json()["streams"] == []


def test_a_strict_streams_conditions_are_checked_against_its_columns(lake: Lake) -> None:
    fields = {"order_id": {"type": "string"}, "amount": {"type": "float64"}}
    response = lake.create(
        "orders",
        schema_mode="strict",
        fields=fields,
        pipeline=[{"type": "filter", "where": "amout > 10"}],
    )
    assert response.status_code == 400
    assert response.json()["error"] == (
        "pipeline[0].where: unknown column 'amout' (the stream's columns here: amount, order_id)"
    )
    response = lake.create(
        "orders",
        schema_mode="strict",
        fields=fields,
        pipeline=[{"type": "filter", "where": "amount > 10"}],
    )
    assert response.status_code == 201, response.text
    lake.ingest("orders", [{"order_id": "a", "amount": 5.0}, {"order_id": "b", "amount": 50.0}])
    lake.flush("orders")
    assert lake.rows("SELECT order_id FROM orders") == [["b"]]


def test_a_condition_that_does_not_fit_a_batch_loses_nothing(lake: Lake) -> None:
    """`n > 2` cannot be evaluated where n is text: the batch is kept whole, and /errors
    says why."""
    assert lake.create("loose", pipeline=[{"type": "filter", "where": "n > 2"}]).status_code == 201
    lake.ingest("loose", [{"n": "one"}, {"n": "two"}, {"n": "three"}])
    lake.flush("loose")
    assert lake.rows("SELECT count(*) FROM loose") == [[3]]
    lake.ingest("loose", [{"n": 1}, {"n": 5}])
    lake.flush("loose")
    assert lake.rows("SELECT count(*) FROM loose") == [[4]]
    errors = lake.client.get("/errors?limit=100", headers=lake.headers).json()["recent"]
    problems = [e for e in errors if e["type"] == "processing"]
    assert len(problems) == 1
    assert "pipeline[0].where: the condition could not be evaluated" in problems[0]["message"]


def test_updating_a_pipeline_applies_to_the_next_flush(lake: Lake) -> None:
    assert lake.create("later").status_code == 201
    lake.ingest("later", events(8))
    lake.flush("later")
    response = lake.client.put(
        "/streams/later",
        headers=lake.headers,
        json={"pipeline": [{"type": "filter", "where": "level = 'error'"}]},
    )
    assert response.status_code == 200, response.text
    lake.ingest("later", events(8))
    lake.flush("later")
    assert lake.rows("SELECT count(*) FROM later") == [[10]]
    response = lake.client.put("/streams/later", headers=lake.headers, json={"pipeline": None})
    assert response.status_code == 200
    assert response.json()["pipeline"] is None


def test_json_columns_stay_json_through_processing(lake: Lake) -> None:
    response = lake.create(
        "plans", pipeline=[{"type": "filter", "where": "props->>'$.plan' = 'pro'"}]
    )
    assert response.status_code == 201, response.text
    lake.ingest(
        "plans",
        [
            {"user": "a", "props": {"plan": "pro", "seats": 3}},
            {"user": "b", "props": {"plan": "free"}},
        ],
    )
    lake.flush("plans")
    assert lake.rows("SELECT user, props->>'$.seats', typeof(props) FROM plans") == [
        ["a", "3", "JSON"]
    ]
