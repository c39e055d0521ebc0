"""The verification-runs reference, section by section, over HTTP."""

from __future__ import annotations

import concurrent.futures
import json
import re
import time
from decimal import Decimal
from urllib.parse import urlsplit

import httpx
import jsonschema
import pytest
import sqlalchemy

from helpers.tenants import Tenants, bearer
from openenrich.config import Settings
from openenrich.verify import links
from openenrich.verify.report import REPORT_SCHEMA
from verify.conftest import DILIGENCE, QUICKSTART, Runs, serve

ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
RESOURCE_FIELDS = {
    "id",
    "thread_id",
    "status",
    "input",
    "answer",
    "steps",
    "report",
    "report_url",
    "plan",
    "error",
    "credits_used",
    "tool_calls",
    "metadata",
    "created_at",
    "started_at",
    "completed_at",
}


def test_quickstart(runs: Runs) -> None:
    created = runs.client.post(
        "/api/v1/runs",
        headers={
            **runs.headers,
            "Content-Type": "application/json",
            "Idempotency-Key": "order-7841",
        },
        content=b"""{
    "message": "Verify identity: Rahul Sharma, +91 98xxxxxx10, PAN ABCDE1234F",
    "workflow": "kyc-verification",
    "metadata": {"order_id": "7841"}
  }""",
    )
    assert created.status_code == 202, (created.text, runs.client.base_url)
    run = created.json()
    assert set(run) == RESOURCE_FIELDS
    assert run["status"] == "queued"
    assert run["id"].startswith("run_")
    assert run["thread_id"].startswith("th_")
    assert run["input"] == {"message": QUICKSTART["message"], "workflow": "kyc-verification"}
    assert run["metadata"] == {"order_id": "7841"}

    done = runs.until(run["id"], "completed")
    assert set(done) == RESOURCE_FIELDS
    # The answer: the verdict, why the PAN is not valid, and that the number is masked.
    assert done["answer"].startswith("Rahul Sharma: not verified. ")
    assert (
        "PAN ABCDE1234F is not valid: its fourth character 'D' is not a holder type."
        in done["answer"]
    )
    assert (
        "The phone number +91 98xxxxxx10 is masked, so it could not be checked." in done["answer"]
    )
    report = done["report"]
    jsonschema.validate(report, REPORT_SCHEMA)
    assert report["verdict"] == "not_verified"
    assert report["subject"] == {"name": "Rahul Sharma", "birth_date": None}
    assert report["not_checked"] == [
        {"kind": "phone", "input": "+91 98xxxxxx10", "reason": "masked"}
    ]
    assert [check["tool"] for check in report["checks"]] == ["pan_verification"]
    assert report["checks"][0]["status"] == "failed"
    # No sanctions list is configured: the screening says so, unbilled.
    assert [(c["tool"], c["status"]) for c in report["cross_checks"]] == [
        ("sanctions_screening", "not_found")
    ]
    pan = next(call for call in done["tool_calls"] if call["name"] == "pan_verification")
    assert pan["id"].startswith("call_")
    assert (pan["status"], pan["billed"], pan["credits"]) == ("failed", False, 0)
    assert isinstance(pan["latency_ms"], int)
    assert done["credits_used"] == sum(call["credits"] for call in done["tool_calls"]) == 0
    assert [step["type"] for step in done["steps"]] == ["tool_call", "tool_call", "report", "text"]
    assert done["plan"] is None
    assert done["error"] is None
    for field in ("created_at", "started_at", "completed_at"):
        assert ISO.fullmatch(done[field])
    assert done["metadata"] == {"order_id": "7841"}

    # The report as a PDF, behind a signed link that a read mints afresh.
    pdf = runs.client.get(local(done["report_url"]))
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-")
    assert pdf.content.rstrip().endswith(b"%%EOF")
    assert b"/Count 1" in pdf.content  # one page
    again = runs.get(run["id"])["report_url"]
    assert runs.client.get(local(again)).content == pdf.content


def local(url: str) -> str:
    """A report_url's path and query: the test server's port is not the configured one."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def test_idempotency_keys(runs: Runs) -> None:
    first = runs.create(QUICKSTART, **{"Idempotency-Key": "order-1"})
    assert first.status_code == 202
    again = runs.create(QUICKSTART, **{"Idempotency-Key": "order-1"})
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    other = runs.create(
        {**QUICKSTART, "message": "Verify PAN AAAPZ1234C"}, **{"Idempotency-Key": "order-1"}
    )
    assert other.status_code == 409
    assert other.json() == {
        "error": {
            "code": "idempotency_key_reuse",
            "message": "This Idempotency-Key was used with a different request body",
            "run_id": first.json()["id"],
        }
    }
    too_long = runs.create(QUICKSTART, **{"Idempotency-Key": "k" * 256})
    assert too_long.status_code == 422
    assert too_long.json()["error"]["code"] == "invalid_request"


def test_concurrent_requests_with_one_key_make_one_run(runs: Runs) -> None:
    def create() -> httpx.Response:
        with httpx.Client(base_url=str(runs.client.base_url), timeout=30) as client:
            return client.post(
                "/api/v1/runs",
                headers={**runs.headers, "Idempotency-Key": "burst"},
                json=QUICKSTART,
            )

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda _: create(), range(8)))
    assert {r.json()["id"] for r in responses} == {responses[0].json()["id"]}
    assert sorted(r.status_code for r in responses) == [200] * 7 + [202]
    listed = runs.client.get(
        f"/api/v1/threads/{responses[0].json()['thread_id']}/runs", headers=runs.headers
    )
    assert listed.json()["total"] == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"workflow": "kyc-verification"}, "message: is required"),
        (
            {"message": "x", "metadata": {"blob": "y" * 2100}},
            "metadata: must be at most 2048 bytes of JSON",
        ),
        (
            {"message": "x", "metadata": "not an object"},
            "metadata: Input should be a valid dictionary",
        ),
        ({"message": "x", "colour": "red"}, "colour: Extra inputs are not permitted"),
    ],
)
def test_invalid_requests_are_422_naming_the_field(
    runs: Runs, body: dict[str, object], message: str
) -> None:
    response = runs.create(body)
    assert response.status_code == 422
    assert response.json() == {"error": {"code": "invalid_request", "message": message}}


def test_not_found_and_unauthorized(runs: Runs, tenants: Tenants) -> None:
    missing = runs.client.get("/api/v1/runs/run_nope", headers=runs.headers)
    assert missing.status_code == 404
    assert missing.json() == {
        "error": {"code": "not_found", "message": "Run not found", "run_id": "run_nope"}
    }
    workflow = runs.create({"message": "PAN ABCDE1234F", "workflow": "no-such-flow"})
    assert workflow.status_code == 404
    assert workflow.json()["error"]["code"] == "workflow_not_found"
    unauthorized = runs.client.get("/api/v1/usage", headers={"Authorization": "Bearer sk-tm-XXXX"})
    assert unauthorized.status_code == 401
    assert unauthorized.json() == {
        "error": {"code": "invalid_api_key", "message": "Invalid, revoked, or expired API key"}
    }
    # Another organisation's run and thread do not exist for us.
    run = runs.create(QUICKSTART).json()
    stranger = bearer(tenants.key("globex"))
    assert runs.client.get(f"/api/v1/runs/{run['id']}", headers=stranger).status_code == 404
    assert runs.client.get(f"/api/v1/runs/{run['id']}/events", headers=stranger).status_code == 404
    assert runs.client.post(f"/api/v1/runs/{run['id']}/cancel", headers=stranger).status_code == 404
    assert (
        runs.client.get(f"/api/v1/threads/{run['thread_id']}/runs", headers=stranger).status_code
        == 404
    )


def test_long_poll_returns_when_the_status_changes(
    fast_settings: Settings, tenants: Tenants
) -> None:
    key = tenants.key("acme")
    # No workers: the run stays queued, so the long-poll waits its whole time. A waiting
    # long-poll looks at the run again every job_poll_seconds even unwoken; here that is
    # longer than any wait, so only a wake-up can end one before its `wait` runs out.
    with (
        serve(fast_settings, workers_in_serve=False, job_poll_seconds=120) as live,
        httpx.Client(base_url=live.url, timeout=90) as c,
    ):
        run = c.post("/api/v1/runs", headers=bearer(key), json=QUICKSTART).json()
        started = time.monotonic()
        waited = c.get(f"/api/v1/runs/{run['id']}?wait=1", headers=bearer(key)).json()
        assert waited["status"] == "queued"
        assert time.monotonic() - started >= 0.9
        # Cancelling from another client wakes a waiting long-poll: it answers before its
        # 50 s (the longest wait there is) run out, which it would sit through otherwise.
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            asked = time.monotonic()
            poll = pool.submit(
                lambda: c.get(f"/api/v1/runs/{run['id']}?wait=50", headers=bearer(key))
            )
            time.sleep(0.3)
            with httpx.Client(base_url=live.url) as other:
                other.post(f"/api/v1/runs/{run['id']}/cancel", headers=bearer(key))
            answer = poll.result(timeout=80).json()
            assert answer["status"] == "cancelled"
            assert time.monotonic() - asked < 50  # woken, not timed out
        too_long = c.get(f"/api/v1/runs/{run['id']}?wait=51", headers=bearer(key))
        assert too_long.status_code == 422


def test_plan_approval(runs: Runs) -> None:
    run = runs.create(DILIGENCE).json()
    parked = runs.until(run["id"], "requires_approval")
    assert parked["plan"]["summary"].startswith("4 checks")
    assert parked["plan"]["tasks"][0]["goal"] == "Run gstin_verification on 27AAPFU0939F1ZV"
    assert parked["tool_calls"] == []

    # Two approvals at once: exactly one wins.
    def approve() -> httpx.Response:
        with httpx.Client(base_url=str(runs.client.base_url), timeout=30) as client:
            return client.post(
                f"/api/v1/runs/{run['id']}/approval",
                headers=runs.headers,
                json={"decision": "approved"},
            )

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda _: approve(), range(2)))
    assert sorted(a.status_code for a in answers) == [200, 409]
    loser = next(a for a in answers if a.status_code == 409)
    assert loser.json()["error"]["code"] == "not_awaiting_approval"

    done = runs.until(run["id"], "completed")
    assert done["plan"] is None
    assert [call["status"] for call in done["tool_calls"]] == ["success"] * 4
    assert done["credits_used"] == 5.5
    late = runs.client.post(
        f"/api/v1/runs/{run['id']}/approval", headers=runs.headers, json={"decision": "approved"}
    )
    assert late.status_code == 409
    bad = runs.client.post(
        f"/api/v1/runs/{run['id']}/approval", headers=runs.headers, json={"decision": "maybe"}
    )
    assert bad.status_code == 422


def test_declined_plan_cancels_and_bills_nothing(runs: Runs) -> None:
    run = runs.create(DILIGENCE).json()
    runs.until(run["id"], "requires_approval")
    declined = runs.client.post(
        f"/api/v1/runs/{run['id']}/approval", headers=runs.headers, json={"decision": "declined"}
    )
    assert declined.status_code == 200
    assert declined.json()["status"] == "cancelled"
    assert declined.json()["credits_used"] == 0


def test_auto_approve_keys_never_park(fast_settings: Settings, tenants: Tenants) -> None:
    with serve(fast_settings) as live, httpx.Client(base_url=live.url, timeout=30) as client:
        admin = tenants.key("acme")
        created = client.post(
            "/api/auth/api-keys",
            headers=bearer(admin),
            json={"role": "member", "auto_approve": True},
        ).json()
        assert created["auto_approve"] is True
        auto = Runs(client, created["key"])
        run = auto.create(DILIGENCE).json()
        done = auto.until(run["id"], "completed")
        assert len(done["tool_calls"]) == 4


def test_approval_timeout_cancels(fast_settings: Settings, tenants: Tenants) -> None:
    with (
        serve(fast_settings, approval_timeout_seconds=0.5, job_lease_seconds=3) as live,
        httpx.Client(base_url=live.url, timeout=30) as client,
    ):
        runs = Runs(client, tenants.key("acme"))
        run = runs.create(DILIGENCE).json()
        # Under load the half-second timeout may pass before the first look.
        runs.until(run["id"], "requires_approval", "cancelled")
        assert runs.until(run["id"], "cancelled", timeout=10)["status"] == "cancelled"
        events = client.get(f"/api/v1/runs/{run['id']}/events", headers=runs.headers).text
        assert "event: run.requires_approval" in events
        assert '"status":"cancelled"' in events.split("event: run.completed")[1]


def test_cancel(runs: Runs) -> None:
    parked = runs.create(DILIGENCE).json()
    runs.until(parked["id"], "requires_approval")
    cancelled = runs.client.post(f"/api/v1/runs/{parked['id']}/cancel", headers=runs.headers)
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    again = runs.client.post(f"/api/v1/runs/{parked['id']}/cancel", headers=runs.headers)
    assert again.status_code == 409
    assert again.json()["error"] == {
        "code": "not_cancellable",
        "message": "This run has already finished",
        "run_id": parked["id"],
    }
    done = runs.create(QUICKSTART).json()
    runs.until(done["id"], "completed")
    assert (
        runs.client.post(f"/api/v1/runs/{done['id']}/cancel", headers=runs.headers).status_code
        == 409
    )


def test_cancelling_a_running_run_keeps_its_partial_answer(
    fast_settings: Settings, tenants: Tenants
) -> None:
    from helpers.http import LocalServer, Reply

    with LocalServer(
        lambda n, r: Reply(body=b"<title>Slow</title>", delay=1.5 if n > 1 else 0)
    ) as site:
        message = f"Check {site.url}/a and {site.url}/b"
        with serve(fast_settings) as live, httpx.Client(base_url=live.url, timeout=30) as client:
            runs = Runs(client, tenants.key("acme"))
            run = runs.create({"message": message, "workflow": "social-profile-analysis"}).json()
            site.wait_for(2)  # the first check is done, the second is under way
            time.sleep(0.2)
            cancelled = client.post(f"/api/v1/runs/{run['id']}/cancel", headers=runs.headers).json()
            assert cancelled["status"] == "cancelled"
            assert f"Website {site.url}/a is up" in cancelled["answer"]
            time.sleep(2)  # the second check ends after the cancel: dropped, not billed
            final = runs.get(run["id"])
    assert final["status"] == "cancelled"
    assert final["credits_used"] == 0.5
    assert [call["status"] for call in final["tool_calls"]] == ["success", "started"]


def test_threads(runs: Runs) -> None:
    first = runs.create({"message": "Verify Rahul: PAN ABCDE1234F, mail rahul@example.com"}).json()
    runs.until(first["id"], "completed")
    follow = runs.create(
        {
            "message": "Also check his employment history",
            "thread_id": first["thread_id"],
            "workflow": "employment-verification",
        }
    ).json()
    assert follow["thread_id"] == first["thread_id"]
    done = runs.until(follow["id"], "completed")
    # The follow-up has no identifiers of its own: it works on the earlier message's.
    assert {call["name"] for call in done["tool_calls"]} == {
        "pan_verification",
        "email_verification",
    }
    assert done["report"]["earlier_runs"][0]["run_id"] == first["id"]
    listing = runs.client.get(
        f"/api/v1/threads/{first['thread_id']}/runs?limit=20&offset=0", headers=runs.headers
    ).json()
    assert [run["id"] for run in listing["runs"]] == [follow["id"], first["id"]]  # newest first
    page = runs.client.get(
        f"/api/v1/threads/{first['thread_id']}/runs?limit=1&offset=1", headers=runs.headers
    ).json()
    assert [run["id"] for run in page["runs"]] == [first["id"]]
    unknown = runs.create({"message": "x", "thread_id": "th_nope"})
    assert unknown.status_code == 404


def test_workflows(runs: Runs, tenants: Tenants) -> None:
    listed = runs.client.get("/api/v1/workflows", headers=runs.headers).json()
    slugs = {w["slug"] for w in listed}
    assert {
        "kyc-verification",
        "kyb-us",
        "kyc-us",
        "employment-verification",
        "mobile-verification",
        "vehicle-rc-verification",
        "uae-verification",
        "business-due-diligence",
        "social-profile-analysis",
    } <= slugs
    assert next(w for w in listed if w["slug"] == "kyc-verification") | {"checks": None} == {
        "slug": "kyc-verification",
        "name": "Kyc Verification",
        "scope": "built-in",
        "is_active": True,
        "description": "Identity verification for India: PAN, Aadhaar, mobile, email",
        "checks": None,
    }
    custom = runs.client.post(
        "/api/v1/workflows",
        headers=runs.headers,
        json={
            "slug": "loan-pre-check",
            "name": "Loan applicant pre-check",
            "description": "PAN + phone + employment",
            "content": "# Pre-check\n\n1. `pan_verification`\n2. `mobile_verification`\n",
        },
    )
    assert custom.status_code == 201
    assert custom.json()["scope"] == "org"
    assert custom.json()["checks"] == ["pan_verification", "mobile_verification"]
    # An organisation's workflow overrides the built-in of the same slug.
    runs.client.post(
        "/api/v1/workflows",
        headers=runs.headers,
        json={"slug": "kyc-verification", "content": "Only `email_verification` for us."},
    )
    run = runs.create(
        {"message": "PAN ABCDE1234F, mail a@b.example", "workflow": "kyc-verification"}
    ).json()
    done = runs.until(run["id"], "completed")
    assert [call["name"] for call in done["tool_calls"]] == ["email_verification"]
    # Deactivated: refused on create.
    assert (
        runs.client.delete("/api/v1/workflows/loan-pre-check", headers=runs.headers).json()[
            "is_active"
        ]
        is False
    )
    refused = runs.create({"message": "PAN ABCDE1234F", "workflow": "loan-pre-check"})
    assert refused.status_code == 404
    assert refused.json()["error"]["code"] == "workflow_not_found"
    # Only admins manage workflows; other organisations do not see ours.
    member = bearer(tenants.key("acme", role="member"))
    assert (
        runs.client.post(
            "/api/v1/workflows", headers=member, json={"slug": "x", "content": "`pan_verification`"}
        ).status_code
        == 403
    )
    other = runs.client.get("/api/v1/workflows", headers=bearer(tenants.key("globex"))).json()
    assert "loan-pre-check" not in {w["slug"] for w in other}


def test_credits(fast_settings: Settings, tenants: Tenants) -> None:
    tenants.plan("prepaid", credit_policy="prepaid", max_credits=Decimal("3"))
    tenants.set_plan("acme", "prepaid")
    with serve(fast_settings) as live, httpx.Client(base_url=live.url, timeout=30) as client:
        runs = Runs(client, tenants.key("acme"))
        assert client.get("/api/v1/usage", headers=runs.headers).json() == {
            "credits_used": 0,
            "credits_remaining": 3,
            "max_credits": 3,
        }
        first = runs.until(
            runs.create({"message": "PAN ABCPS1234K and PAN AAAPZ1234C"}).json()["id"], "completed"
        )
        assert first["credits_used"] == 4  # admitted with 3 left, ran past zero
        assert client.get("/api/v1/usage", headers=runs.headers).json() == {
            "credits_used": 4,
            "credits_remaining": -1,
            "max_credits": 3,
        }
        refused = runs.create(QUICKSTART)
        assert refused.status_code == 402
        assert refused.json()["error"]["code"] == "insufficient_credits"
        # The test environment is never billed.
        sandbox = Runs(client, tenants.key("acme", environment="test"))
        free = sandbox.until(sandbox.create(QUICKSTART).json()["id"], "completed")
        assert free["credits_used"] == 0
        assert all(call["billed"] is False for call in free["tool_calls"])
        assert client.get("/api/v1/usage", headers=sandbox.headers).json() == {
            "credits_used": 0,
            "credits_remaining": None,
            "max_credits": None,
        }


def test_rate_limits(fast_settings: Settings, tenants: Tenants) -> None:
    key = tenants.key("acme")
    limits = {
        "runs_create_per_minute": 2,
        "runs_max_active": 10,
        "runs_reads_per_minute": 3,
        "workers_in_serve": False,
    }
    with serve(fast_settings, **limits) as live, httpx.Client(base_url=live.url) as client:
        assert client.post("/api/v1/runs", headers=bearer(key), json=QUICKSTART).status_code == 202
        assert client.post("/api/v1/runs", headers=bearer(key), json=QUICKSTART).status_code == 202
        third = client.post("/api/v1/runs", headers=bearer(key), json=QUICKSTART)
        assert third.status_code == 429
        assert third.headers["Retry-After"] == "60"
        assert third.json()["error"]["code"] == "rate_limited"
        reads = [client.get("/api/v1/usage", headers=bearer(key)).status_code for _ in range(4)]
        assert reads == [200, 200, 200, 429]
    other = tenants.key("acme")
    with (
        serve(fast_settings, runs_max_active=2, workers_in_serve=False) as live,
        httpx.Client(base_url=live.url) as client,
    ):
        for _ in range(2):
            assert (
                client.post("/api/v1/runs", headers=bearer(other), json=QUICKSTART).status_code
                == 202
            )
        busy = client.post("/api/v1/runs", headers=bearer(other), json=QUICKSTART)
        assert busy.status_code == 429
        assert busy.headers["Retry-After"] == "10"


@pytest.mark.parametrize(
    "query",
    ["offset=99999999999999999999999", f"offset={2**63}", "limit=99999999999999999999999"],
)
def test_paging_out_of_range_is_422(runs: Runs, query: str) -> None:
    run = runs.create(QUICKSTART).json()
    response = runs.client.get(
        f"/api/v1/threads/{run['thread_id']}/runs?{query}", headers=runs.headers
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"


def test_the_largest_offset_is_an_empty_page(runs: Runs) -> None:
    run = runs.create(QUICKSTART).json()
    response = runs.client.get(
        f"/api/v1/threads/{run['thread_id']}/runs?offset={2**63 - 1}", headers=runs.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["runs"] == []


def test_a_report_link_that_is_altered_or_expired_is_refused(
    fast_settings: Settings, tenants: Tenants
) -> None:
    with serve(fast_settings) as live, httpx.Client(base_url=live.url, timeout=60) as client:
        runs = Runs(client, tenants.key("acme"))
        created = runs.create(QUICKSTART, **{"Idempotency-Key": "pdf-links"})
        done = runs.until(created.json()["id"], "completed")
        url = local(done["report_url"])
        assert client.get(url).status_code == 200
        # The link is the credential: no key is needed, and none helps a bad link.
        path, _, query = url.partition("?")
        fields = dict(part.split("=", 1) for part in query.split("&"))
        later = f"{path}?expires={int(fields['expires']) + 60}&signature={fields['signature']}"
        forged = f"{path}?expires={fields['expires']}&signature={'0' * 64}"
        for refused in (later, forged, path, f"{path}?expires=abc&signature=x"):
            answer = client.get(refused, headers=runs.headers)
            assert answer.status_code == 403, refused
            assert answer.json()["error"]["code"] == "forbidden"
        # Signed right but expired: minted from the run's own link an hour ago.
        engine = sqlalchemy.create_engine(fast_settings.sync_database)
        try:
            with engine.connect() as connection:
                link = connection.execute(
                    sqlalchemy.text("SELECT report_link FROM runs WHERE id = :id"),
                    {"id": done["id"]},
                ).scalar_one()
        finally:
            engine.dispose()
        stored = link if isinstance(link, dict) else json.loads(link)
        expired = links.report_url(stored, done["id"], now=time.time() - 3600 - 60)
        assert expired is not None
        assert client.get(local(expired)).status_code == 403
        # A run that is not there (or has no report yet): 404.
        assert client.get(f"/api/v1/runs/run_nope/report.pdf?{query}").status_code == 404


def test_the_tenants_runs_are_listed_newest_first(runs: Runs, tenants: Tenants) -> None:
    made = []
    answers = {}
    for n in range(3):
        created = runs.create(
            {"message": f"{QUICKSTART} #{n}", "workflow": "kyc-verification", "metadata": {"n": n}}
        )
        assert created.status_code == 202, created.text
        made.append(created.json()["id"])
        answers[created.json()["id"]] = created.json()
    other = bearer(tenants.key("globex"))
    assert runs.client.post("/api/v1/runs", headers=other, json={"message": QUICKSTART})
    page = runs.client.get("/api/v1/runs?limit=2", headers=runs.headers).json()
    assert [run["id"] for run in page["runs"]] == made[::-1][:2]
    assert (page["limit"], page["offset"], page["total"]) == (2, 0, 3)
    rest = runs.client.get("/api/v1/runs?limit=2&offset=2", headers=runs.headers).json()
    assert [run["id"] for run in rest["runs"]] == made[:1]
    assert set(RESOURCE_FIELDS) <= set(rest["runs"][0])
    # The answer to the POST (the run as written, not read back) is the run as stored.
    for run in page["runs"] + rest["runs"]:
        created = answers[run["id"]]
        for field in ("thread_id", "input", "metadata", "created_at"):
            assert created[field] == run[field], field
        assert (created["status"], created["steps"], created["credits_used"]) == ("queued", [], 0)
    refused = runs.client.get("/api/v1/runs?limit=101", headers=runs.headers)
    assert refused.status_code == 422
