"""GET /api/v1/runs/{id}/events: the wire format, replay, resume, heartbeats."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from verify.conftest import DILIGENCE, QUICKSTART, Runs


@dataclass
class Event:
    id: int | None = None
    event: str | None = None
    data: dict[str, object] | None = None
    comment: str | None = None
    retry: int | None = None
    raw: list[str] = field(default_factory=list)


def parse(lines: Iterator[str]) -> Iterator[Event]:
    """A minimal SSE parser: what a client sees, block by block."""
    current = Event()
    for line in lines:
        if line == "":
            if current.raw:
                yield current
            current = Event()
            continue
        current.raw.append(line)
        if line.startswith(":"):
            current.comment = line[1:].strip()
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "id":
            current.id = int(value)
        elif name == "event":
            current.event = value
        elif name == "data":
            current.data = json.loads(value)
        elif name == "retry":
            current.retry = int(value)


def events_of(runs: Runs, run_id: str, **headers: str) -> list[Event]:
    with runs.client.stream(
        "GET", f"/api/v1/runs/{run_id}/events", headers={**runs.headers, **headers}
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        return list(parse(response.iter_lines()))


def test_a_finished_run_replays_its_history_and_closes(runs: Runs) -> None:
    run = runs.create(QUICKSTART).json()
    runs.until(run["id"], "completed")
    blocks = events_of(runs, run["id"])
    assert blocks[0].retry == 3000
    events = [b for b in blocks if b.event]
    assert [e.id for e in events] == list(range(1, len(events) + 1))
    assert events[0].event == "run.created"
    assert events[0].data == {"run_id": run["id"], "thread_id": run["thread_id"]}
    assert events[-1].event == "run.completed"
    assert set(events[-1].data or {}) == {"status", "credits_used", "report_url"}
    assert (events[-1].data or {})["status"] == "completed"
    assert (events[-1].data or {})["credits_used"] == 0  # the PAN is not valid: unbilled
    assert "/report.pdf?expires=" in (events[-1].data or {})["report_url"]
    names = [e.event for e in events]
    assert names.count("tool_call") == 4  # started and finished: the PAN and the screening
    assert {"answer.delta", "run.report"} <= set(names)
    tool = next(e for e in events if e.event == "tool_call")
    assert set(tool.data or {}) == {"id", "name", "status"}
    assert all(line.startswith(("id: ", "event: ", "data: ")) for e in events for line in e.raw)


def test_resume_after_event_k_gets_exactly_the_rest(runs: Runs) -> None:
    run = runs.create(QUICKSTART).json()
    runs.until(run["id"], "completed")
    everything = [e for e in events_of(runs, run["id"]) if e.event]
    for k in (0, 1, 4, len(everything) - 1, len(everything)):
        by_header = [e for e in events_of(runs, run["id"], **{"Last-Event-ID": str(k)}) if e.event]
        assert [e.id for e in by_header] == [e.id for e in everything[k:]]
        with runs.client.stream(
            "GET", f"/api/v1/runs/{run['id']}/events?after={k}", headers=runs.headers
        ) as r:
            by_query = [e for e in parse(r.iter_lines()) if e.event]
        assert [(e.id, e.event, e.data) for e in by_query] == [
            (e.id, e.event, e.data) for e in everything[k:]
        ]
    bad = runs.client.get(
        f"/api/v1/runs/{run['id']}/events", headers={**runs.headers, "Last-Event-ID": "x"}
    )
    assert bad.status_code == 422


def test_disconnect_and_reconnect_during_a_live_run(runs: Runs) -> None:
    run = runs.create(DILIGENCE).json()
    # Follow the stream live until the run parks, and note the last id seen.
    seen: list[Event] = []
    with runs.client.stream(
        "GET", f"/api/v1/runs/{run['id']}/events", headers=runs.headers
    ) as response:
        for block in parse(response.iter_lines()):
            if block.event:
                seen.append(block)
            if block.event == "run.requires_approval":
                break  # the client goes away here
    k = seen[-1].id
    assert [e.event for e in seen] == ["run.created", "run.requires_approval"]
    assert seen[-1].data == {"plan": runs.get(run["id"])["plan"]}

    runs.client.post(
        f"/api/v1/runs/{run['id']}/approval", headers=runs.headers, json={"decision": "approved"}
    )
    rest = [e for e in events_of(runs, run["id"], **{"Last-Event-ID": str(k)}) if e.event]
    assert [e.id for e in rest] == list(range(k + 1, k + 1 + len(rest)))  # no gap, no repeat
    assert rest[-1].event == "run.completed"
    assert sum(1 for e in rest if e.event == "tool_call") == 8
    assert [e.id for e in seen] + [e.id for e in rest] == list(range(1, rest[-1].id + 1))


def test_heartbeats_while_a_run_waits(runs: Runs) -> None:
    run = runs.create(DILIGENCE).json()
    runs.until(run["id"], "requires_approval")
    pings = 0
    with runs.client.stream(
        "GET", f"/api/v1/runs/{run['id']}/events", headers=runs.headers
    ) as response:
        for block in parse(response.iter_lines()):
            if block.comment == "ping":
                pings += 1
                if pings == 2:
                    break
    assert pings == 2  # the parked run's stream stays open, with heartbeats (0.3 s here)


def test_stream_true_turns_the_create_response_into_the_stream(runs: Runs) -> None:
    with runs.client.stream(
        "POST", "/api/v1/runs", headers=runs.headers, json={**QUICKSTART, "stream": True}
    ) as response:
        # 200, not 202: the body is the stream (EventSource clients refuse other statuses).
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [e for e in parse(response.iter_lines()) if e.event]
    assert events[0].event == "run.created"
    assert events[-1].event == "run.completed"
    run_id = events[0].data["run_id"]  # type: ignore[index]
    assert runs.get(str(run_id))["status"] == "completed"


def test_unknown_run_has_no_stream(runs: Runs) -> None:
    response = runs.client.get("/api/v1/runs/run_nope/events", headers=runs.headers)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_a_client_following_live_sees_every_event_once(runs: Runs) -> None:
    with httpx.Client(base_url=str(runs.client.base_url), timeout=30) as follower:
        run = runs.create(QUICKSTART).json()
        with follower.stream(
            "GET", f"/api/v1/runs/{run['id']}/events", headers=runs.headers
        ) as response:
            live = [e for e in parse(response.iter_lines()) if e.event]
    assert [e.id for e in live] == list(range(1, len(live) + 1))
    assert live[-1].event == "run.completed"


INT64_MAX = 2**63 - 1


@pytest.mark.parametrize(
    ("header", "query"),
    [
        ({"Last-Event-ID": "99999999999999999999999"}, ""),
        ({"Last-Event-ID": str(INT64_MAX + 1)}, ""),
        ({}, "?after=99999999999999999999999"),
        ({}, f"?after={INT64_MAX + 1}"),
        ({}, "?after=-1"),
        # Latin-1 superscript two: str.isdigit() says yes, int() says no.
        ({"Last-Event-ID": b"\xb2"}, ""),
        ({"Last-Event-ID": "-1"}, ""),
    ],
)
def test_an_event_id_out_of_range_is_422_before_the_stream_starts(
    runs: Runs, header: dict[str, str | bytes], query: str
) -> None:
    run = runs.create(QUICKSTART).json()
    response = runs.client.get(
        f"/api/v1/runs/{run['id']}/events{query}", headers={**runs.headers, **header}
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert ("Last-Event-ID" if header else "after") in error["message"]


def test_the_largest_event_id_is_a_resume_after_everything(runs: Runs) -> None:
    run = runs.create(QUICKSTART).json()
    runs.until(run["id"], "completed")
    assert [
        e for e in events_of(runs, run["id"], **{"Last-Event-ID": str(INT64_MAX)}) if e.event
    ] == []
    with runs.client.stream(
        "GET", f"/api/v1/runs/{run['id']}/events?after={INT64_MAX}", headers=runs.headers
    ) as response:
        assert response.status_code == 200
        assert [e for e in parse(response.iter_lines()) if e.event] == []
