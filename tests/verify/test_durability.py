"""SIGKILL while runs are running: interrupted, retried under the same id, billed once."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from helpers.http import LocalServer, Reply
from helpers.processes import ServeProcess
from helpers.tenants import Tenants, bearer
from openenrich.billing.models import LedgerEntry
from openenrich.config import Settings
from openenrich.verify.sanctions import sample_list_path

pytestmark = pytest.mark.subprocess


def test_a_killed_server_interrupts_runs_that_retry_completes_once(
    settings: Settings, tenants: Tenants, tmp_path: Path
) -> None:
    key = tenants.key("acme")
    slow = {"on": True}
    with LocalServer(
        lambda n, r: Reply(
            body=b"<title>Site</title>", delay=30 if slow["on"] and r.path == "/b" else 0
        )
    ) as site:
        body = {
            # A person named: the sanctions screening runs after /b, written with it.
            "message": f"Verify Asha Rao: check {site.url}/a then {site.url}/b",
            "workflow": "social-profile-analysis",
        }
        headers = {**bearer(key), "Idempotency-Key": "order-kill"}
        env = {
            "OPENENRICH_ALLOW_PRIVATE_URLS": "true",
            "OPENENRICH_JOB_POLL_SECONDS": "0.2",
            "OPENENRICH_VERIFY_SANCTIONS_LIST": str(sample_list_path()),
        }
        data = tmp_path / "serve"
        url = str(settings.database_url)

        with ServeProcess(data, database_url=url, env=env) as server:
            run = httpx.post(f"{server.url}/api/v1/runs", headers=headers, json=body).json()
            site.wait_for(2)  # /a done (and billed), /b under way
            time.sleep(0.3)
            server.kill()

        slow["on"] = False
        with ServeProcess(data, database_url=url, env=env) as again:
            # The restarted node knows the run was its own: interrupted at once.
            interrupted = httpx.get(
                f"{again.url}/api/v1/runs/{run['id']}", headers=bearer(key)
            ).json()
            assert interrupted["status"] == "interrupted"
            assert [c["status"] for c in interrupted["tool_calls"]] == ["success", "started"]
            assert interrupted["credits_used"] == 0.5

            retried = httpx.post(f"{again.url}/api/v1/runs", headers=headers, json=body)
            assert retried.status_code == 200
            assert retried.json()["id"] == run["id"]
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                done = httpx.get(
                    f"{again.url}/api/v1/runs/{run['id']}?wait=5", headers=bearer(key), timeout=30
                ).json()
                if done["status"] == "completed":
                    break
            assert done["status"] == "completed"

    calls = [(c["name"], c["status"]) for c in done["tool_calls"]]
    assert calls == [
        ("website_check", "success"),
        ("website_check", "success"),
        ("sanctions_screening", "success"),
    ]
    assert done["credits_used"] == 2.0
    # /a was not checked again; /b once before the kill and once after.
    assert [r.path for r in site.received].count("/a") == 1
    assert [r.path for r in site.received].count("/b") == 2

    async def ledger(session: AsyncSession) -> int:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(LedgerEntry)
                .where(LedgerEntry.source_id == run["id"])
            )
            or 0
        )

    assert tenants.run(ledger) == 3  # one charge per check, none twice
