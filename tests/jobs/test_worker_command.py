"""`openenrich worker`: workers in their own processes, next to a `serve` without any."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from helpers.http import LocalServer, Reply
from helpers.processes import ServeProcess, WorkerProcess
from helpers.tenants import Tenants, bearer
from openenrich.config import Settings

pytestmark = pytest.mark.subprocess

WAIT = 50  # seconds: the longest long-poll the API allows, far longer than this test


def test_worker_processes_run_what_serve_accepts(
    settings: Settings, tenants: Tenants, tmp_path: Path
) -> None:
    # Several workers claim from one PostgreSQL; SQLite is for one writing process at a time
    # besides the API, so one worker there.
    workers = 2 if settings.database.get_backend_name() == "postgresql" else 1
    key = tenants.key("acme")
    url = str(settings.database_url)
    env = {
        "OPENENRICH_ALLOW_PRIVATE_URLS": "true",
        # Nothing here waits for a poll: wake-ups cross processes (PostgreSQL's NOTIFY;
        # on SQLite, datagram sockets next to the database). The poll is longer than any
        # long-poll below, so a lost wake-up would hold one for its whole WAIT.
        "OPENENRICH_JOB_POLL_SECONDS": "120",
        "OPENENRICH_WORKER_CONCURRENCY": "3",
    }
    with (
        LocalServer(lambda n, r: Reply(body=b"<title>Site</title>", delay=0.2)) as site,
        ServeProcess(
            tmp_path / "api", database_url=url, env={**env, "OPENENRICH_WORKERS_IN_SERVE": "false"}
        ) as api,
    ):
        created = [
            httpx.post(
                f"{api.url}/api/v1/runs",
                headers=bearer(key),
                json={"message": f"Check {site.url}/{n}", "workflow": "social-profile-analysis"},
            ).json()
            for n in range(9)  # under the 10 active runs a key may have
        ]
        time.sleep(0.5)
        assert {
            httpx.get(f"{api.url}/api/v1/runs/{run['id']}", headers=bearer(key)).json()["status"]
            for run in created
        } == {"queued"}  # nobody in `serve` runs them

        with_workers = [
            WorkerProcess(tmp_path / f"worker{n}", database_url=url, env=env)
            for n in range(workers)
        ]
        for worker in with_workers:
            worker.__enter__()
        try:
            done = []
            polls = []  # how long each long-poll took
            for run in created:
                for _ in range(10):  # queued -> running -> completed: a poll per change
                    asked = time.monotonic()
                    answer = httpx.get(
                        f"{api.url}/api/v1/runs/{run['id']}?wait={WAIT}",
                        headers=bearer(key),
                        timeout=WAIT + 30,
                    ).json()
                    polls.append(time.monotonic() - asked)
                    if answer["status"] == "completed":
                        break
                done.append(answer)
        finally:
            for worker in with_workers:
                worker.stop()

    assert [run["status"] for run in done] == ["completed"] * 9
    # Every long-poll was woken by a change made in a worker process: none sat out its WAIT.
    assert max(polls) < WAIT, polls
    assert [[call["status"] for call in run["tool_calls"]] for run in done] == [["success"]] * 9
    # Every run executed once: each site page was checked by exactly one worker.
    assert sorted(r.path for r in site.received) == sorted(f"/{n}" for n in range(9))
    for worker in with_workers:
        assert worker.returncode == 0, worker.text  # SIGTERM: a clean stop
