"""Event streams and long-polls from the job facility (`jobs.stream`), through the notes
surface of conftest.py: its wire format, status words and error body, not the runs'."""

from __future__ import annotations

import concurrent.futures
import time
from typing import Any

import httpx

from jobs.conftest import Read, blocks, follow, next_event, until_closed


def new_note(notes: httpx.Client, text: str = "hello") -> dict[str, Any]:
    created = notes.post("/api/notes", json={"text": text})
    assert created.status_code == 201
    return dict(created.json())


def add_lines(notes: httpx.Client, note_id: str, *texts: str) -> None:
    for text in texts:
        assert notes.post(f"/api/notes/{note_id}/lines", json={"text": text}).status_code == 200


def finish(notes: httpx.Client, note_id: str, to: str = "completed") -> None:
    assert notes.post(f"/api/notes/{note_id}/status", json={"to": to}).json() == {"moved": True}


def read(notes: httpx.Client, note_id: str, query: str = "", **headers: str) -> Read:
    with notes.stream("GET", f"/api/notes/{note_id}/events{query}", headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        return follow(response)


def test_a_finished_job_replays_its_history_in_the_surfaces_format_then_closes(
    notes: httpx.Client,
) -> None:
    note = new_note(notes)
    add_lines(notes, note["id"], "one", "two")
    finish(notes, note["id"])
    got = read(notes, note["id"])
    assert got.closed
    assert got.blocks[0].retry == 3000  # how long EventSource waits before it reconnects
    assert [(e.id, e.data) for e in got.events] == [
        (1, {"type": "created", "id": note["id"], "text": "hello"}),
        (2, {"type": "line", "text": "one"}),
        (3, {"type": "line", "text": "two"}),
    ]
    # The surface's wire format: `id:` and `data:` only, the type inside the data.
    assert all(line.startswith(("id: ", "data: ")) for e in got.events for line in e.lines)
    assert [b for b in got.blocks if b.comment == "ping"] == []


def test_resume_after_event_k_gets_exactly_the_events_after_k(notes: httpx.Client) -> None:
    note = new_note(notes)
    add_lines(notes, note["id"], *(f"line {n}" for n in range(5)))
    finish(notes, note["id"])
    everything = [(e.id, e.data) for e in read(notes, note["id"]).events]
    assert [seq for seq, _ in everything] == [1, 2, 3, 4, 5, 6]
    for k in range(len(everything) + 1):
        by_header = read(notes, note["id"], **{"Last-Event-ID": str(k)})
        by_query = read(notes, note["id"], f"?after={k}")
        assert by_header.closed
        assert by_query.closed
        assert [(e.id, e.data) for e in by_header.events] == everything[k:]
        assert [(e.id, e.data) for e in by_query.events] == everything[k:]
    # EventSource reconnects to the URL it opened, with the id it saw last: that id wins.
    both = read(notes, note["id"], "?after=1", **{"Last-Event-ID": "4"})
    assert [e.id for e in both.events] == [5, 6]


def test_a_client_that_left_mid_job_resumes_where_it_left(notes: httpx.Client) -> None:
    note = new_note(notes)
    add_lines(notes, note["id"], "a")
    with notes.stream("GET", f"/api/notes/{note['id']}/events") as response:
        stream = blocks(response.iter_lines())
        seen = [next_event(stream), next_event(stream)]  # then the client goes away
    add_lines(notes, note["id"], "b", "c")  # while nobody follows
    last = seen[-1]
    assert last is not None
    with notes.stream(
        "GET", f"/api/notes/{note['id']}/events", headers={"Last-Event-ID": str(last.id)}
    ) as response:
        stream = blocks(response.iter_lines())
        first_back = next_event(stream)
        add_lines(notes, note["id"], "d")
        finish(notes, note["id"])
        rest = until_closed(stream)
    assert first_back is not None
    assert rest.closed
    after = [first_back, *rest.events]
    assert [b.id for b in seen if b] + [e.id for e in after] == [1, 2, 3, 4, 5]
    assert [e.data["text"] for e in after if e.data] == ["b", "c", "d"]


def test_a_live_follower_sees_every_event_once_and_the_stream_closes_at_the_end(
    notes: httpx.Client,
) -> None:
    note = new_note(notes)
    with (
        httpx.Client(base_url=str(notes.base_url), timeout=20) as other,
        concurrent.futures.ThreadPoolExecutor(1) as pool,
    ):
        following = pool.submit(read, other, note["id"])
        add_lines(notes, note["id"], "a", "b", "c")
        finish(notes, note["id"])
        got = following.result(timeout=30)
    assert got.closed
    assert [e.id for e in got.events] == [1, 2, 3, 4]
    assert [e.data["text"] for e in got.events if e.data] == ["hello", "a", "b", "c"]


def test_heartbeats_while_nothing_happens_then_the_next_event(notes: httpx.Client) -> None:
    note = new_note(notes)
    with notes.stream("GET", f"/api/notes/{note['id']}/events") as response:
        stream = blocks(response.iter_lines())
        quiet = until_closed(stream, pings=2)
        add_lines(notes, note["id"], "after the silence")
        later = next_event(stream)
    assert not quiet.closed  # the job is still waiting: the stream stays open
    assert [e.id for e in quiet.events] == [1]
    assert later is not None
    assert (later.id, later.data) == (2, {"type": "line", "text": "after the silence"})


def test_create_asked_to_stream_answers_with_the_stream(notes: httpx.Client) -> None:
    with notes.stream("POST", "/api/notes", json={"text": "live", "stream": True}) as response:
        # 200, not the surface's 201: EventSource clients refuse any other status.
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        stream = blocks(response.iter_lines())
        first = next(b for b in stream if b.data is not None)
        assert first.id == 1
        assert first.data is not None
        assert (first.data["type"], first.data["text"]) == ("created", "live")
        add_lines(notes, first.data["id"], "and then")
        finish(notes, first.data["id"])
        rest = until_closed(stream)
    assert rest.closed
    assert [(e.id, e.data) for e in rest.events] == [(2, {"type": "line", "text": "and then"})]


def test_long_poll_waits_for_a_change_of_status_in_the_surfaces_words(
    notes: httpx.Client,
) -> None:
    note = new_note(notes)
    assert note["state"] == "waiting"
    # Nothing changes: the poll answers when its time is up, unchanged.
    assert notes.get(f"/api/notes/{note['id']}?wait=0.3").json()["state"] == "waiting"
    # A change wakes it. The wait (50 s) is longer than the client's patience (20 s), so an
    # answer at all means the change ended it, not the clock.
    with (
        httpx.Client(base_url=str(notes.base_url), timeout=20) as other,
        concurrent.futures.ThreadPoolExecutor(1) as pool,
    ):
        poll = pool.submit(other.get, f"/api/notes/{note['id']}?wait=50")
        time.sleep(0.3)  # most likely waiting by now (if not, it finds the job finished)
        finish(notes, note["id"])
        assert poll.result(timeout=30).json() == {"id": note["id"], "state": "done"}
    # A finished job does not wait at all.
    assert notes.get(f"/api/notes/{note['id']}?wait=50").json()["state"] == "done"


def test_a_job_the_tenant_does_not_have_is_the_surfaces_404(notes: httpx.Client) -> None:
    for path in ("/api/notes/job_nope", "/api/notes/job_nope?wait=5", "/api/notes/job_nope/events"):
        response = notes.get(path)
        assert response.status_code == 404
        assert response.json() == {"detail": "Note not found"}
    # Another kind of job is not a note.
    memo = notes.post("/api/memos", json={"text": "x"}).json()
    assert notes.get(f"/api/notes/{memo['id']}/events").status_code == 404


def test_a_bad_event_id_is_refused_in_the_surfaces_body(notes: httpx.Client) -> None:
    note = new_note(notes)
    bad = notes.get(f"/api/notes/{note['id']}/events", headers={"Last-Event-ID": "x"})
    assert bad.status_code == 400  # this surface's status for a bad request (runs: 422)
    assert bad.json()["detail"].startswith("Last-Event-ID: must be an event id")
    assert notes.get(f"/api/notes/{note['id']}/events?after=-1").status_code == 400
