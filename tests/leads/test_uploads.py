"""`POST /v1/pipelines/:id/leads`: the reference's example, per-row outcomes, dedup across
the account, the quota (atomic, also under concurrent uploads), the concurrent-upload
cap and the body cap."""

from __future__ import annotations

import concurrent.futures
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from helpers.tenants import Tenants, bearer
from leads.conftest import Leads, addresses, serve
from openenrich.config import Settings
from openenrich.leads.models import LEAD_FIELDS, LeadUploadSlot

REFERENCE_BODY = b"""[
    {
      "email": "ada@example.com",
      "first_name": "Ada",
      "last_name": "Lovelace",
      "company": "Analytical Engines",
      "title": "Founder",
      "linkedin_url": "https://linkedin.com/in/adalovelace",
      "company_website": "https://analyticalengines.com",
      "custom_fields": { "source": "Apollo", "tier": "A" }
    },
    { "email": "alan@bletchley.test" }
  ]"""


def listed(leads: Leads, pipeline: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = leads.page(pipeline, limit=10000)["data"]
    return rows


def test_upload_as_the_reference_does(leads: Leads, pipeline: str) -> None:
    answer = leads.request(
        "POST",
        f"/v1/pipelines/{pipeline}/leads",
        headers={"Content-Type": "application/json"},
        content=REFERENCE_BODY,
    )
    assert answer.status_code == 202
    body = answer.json()
    assert {k: body[k] for k in ("received", "created", "skipped", "failed", "dropped")} == {
        "received": 2,
        "created": 2,
        "skipped": 0,
        "failed": 0,
        "dropped": 0,
    }
    assert body["pipeline_id"] == pipeline
    assert body["total_leads"] == 2
    assert body["current_count"] == 2
    assert body["quota_limit"] is None
    assert [(r["index"], r["status"], r["email"]) for r in body["rows"]] == [
        (0, "created", "ada@example.com"),
        (1, "created", "alan@bletchley.test"),
    ]
    ada = next(
        row for row in listed(leads, pipeline) if row["lead"]["lead_email"] == "ada@example.com"
    )
    assert ada["pipeline_lead_id"] == body["rows"][0]["pipeline_lead_id"]
    assert ada["lead"]["lead_id"] == body["rows"][0]["lead_id"]
    assert ada["pipeline_lead_stage"] == "IMPORTED"
    assert ada["pipeline_lead_email_validation_status"] is None
    lead = ada["lead"]
    assert lead["lead_first_name"] == "Ada"
    assert lead["lead_last_name"] == "Lovelace"
    assert lead["lead_company"] == "Analytical Engines"
    assert lead["lead_title"] == "Founder"
    assert lead["lead_linkedin_url"] == "https://linkedin.com/in/adalovelace"
    assert lead["lead_company_website"] == "https://analyticalengines.com"
    assert lead["lead_phone"] is None
    assert lead["lead_custom_fields"] == {"source": "Apollo", "tier": "A"}
    assert lead["lead_enrichment_status"] == "NOT_ENRICHED"
    stats = leads.pipeline(pipeline)
    assert stats["total_leads"] == stats["imported_leads"] == 2


def test_every_field_and_custom_fields_are_stored_as_sent(leads: Leads, pipeline: str) -> None:
    custom = {
        "source": "Apollo",
        "nested": {"list": [1, 2.5, None, True, "ü"], "empty": {}},
        "Company summary": "kept",
        "big": 12345678901234,
    }
    row: dict[str, Any] = {"email": "grace@navy.example", "custom_fields": custom}
    row.update({name: f"{name} ✓ \t value" for name in LEAD_FIELDS})
    leads.upload(pipeline, [row])
    lead = listed(leads, pipeline)[0]["lead"]
    for name in LEAD_FIELDS:
        assert lead[f"lead_{name}"] == f"{name} ✓ \t value"
    assert lead["lead_custom_fields"] == custom
    assert lead["lead_email"] == "grace@navy.example"


def test_each_bad_row_fails_with_its_reason_and_the_others_land(
    leads: Leads, pipeline: str
) -> None:
    rows: list[Any] = [
        {"email": "first@ok.example"},
        {"first_name": "No address"},
        {"email": None},
        {"email": ""},
        {"email": "   "},
        {"email": 42},
        {"email": ["a@b.example"]},
        {"email": "not-an-address"},
        {"email": "two@@at.example"},
        {"email": "a@localhost"},
        {"email": "a@printer.local"},
        {"email": "a@b"},
        {"email": "ok@x.example", "first_name": 7},
        {"email": "ok@x.example", "company_size": 50},
        {"email": "ok@x.example", "location": {"city": "Paris"}},
        {"email": "ok@x.example", "phone": True},
        {"email": "ok@x.example", "custom_fields": ["a"]},
        {"email": "ok@x.example", "custom_fields": "source=Apollo"},
        {"email": "ok@x.example", "source": "Apollo"},
        {"email": "ok@x.example", "lead_email": "x@y.example"},
        "ok@x.example",
        None,
        7,
        [],
        {"email": "last@ok.example", "first_name": None, "custom_fields": None},
    ]
    body = leads.upload(pipeline, rows)
    assert (body["received"], body["created"], body["failed"]) == (25, 2, 23)
    reasons = [row.get("reason") for row in body["rows"]]
    assert reasons == [
        None,
        "email is required",
        "email is required",
        "email is required",
        "email is required",
        "email must be a string",
        "email must be a string",
        "email is malformed: An email address must have an @-sign.",
        "email is malformed: The part after the @-sign contains invalid characters: '@'.",
        "email is malformed: The part after the @-sign is not valid. It should have a period.",
        "email is malformed: The part after the @-sign is a special-use or reserved name "
        "that cannot be used with email.",
        "email is malformed: The part after the @-sign is not valid. It should have a period.",
        "first_name must be a string",
        "company_size must be a string",
        "location must be a string",
        "phone must be a string",
        "custom_fields must be an object",
        "custom_fields must be an object",
        "unknown field 'source': a lead has email, first_name, last_name, company, title, "
        "phone, linkedin_url, company_website, company_description, company_size, industry, "
        "location and custom_fields (an object, for anything else)",
        "unknown field 'lead_email': a lead has email, first_name, last_name, company, "
        "title, phone, linkedin_url, company_website, company_description, company_size, "
        "industry, location and custom_fields (an object, for anything else)",
        "each lead must be a JSON object",
        "each lead must be a JSON object",
        "each lead must be a JSON object",
        "each lead must be a JSON object",
        None,
    ]
    assert [row["status"] for row in body["rows"]] == ["created"] + ["failed"] * 23 + ["created"]
    # A failed row shows the address it was sent with, when it had one.
    assert body["rows"][7]["email"] == "not-an-address"
    assert "email" not in body["rows"][1]
    assert {row["lead"]["lead_email"] for row in listed(leads, pipeline)} == {
        "first@ok.example",
        "last@ok.example",
    }
    # The valid address of the failed rows was never stored: it uploads now.
    assert leads.upload(pipeline, [{"email": "ok@x.example"}])["created"] == 1


def test_dedup_is_by_normalised_address_across_the_account(
    leads: Leads, other: Leads, pipeline: str
) -> None:
    first = leads.upload(
        pipeline,
        [
            {"email": "Ada@Example.com"},
            {"email": "grace@bücher.de"},
            {"email": "ada@example.COM"},  # the same address: skipped
            {"email": "  alan@bletchley.test  "},
        ],
    )
    assert [r["status"] for r in first["rows"]] == ["created", "created", "skipped", "created"]
    assert first["rows"][2]["reason"] == "duplicate of row 0 in this upload"
    assert (first["created"], first["skipped"]) == (3, 1)

    elsewhere = leads.create_pipeline("elsewhere")["pipeline_id"]
    second = leads.upload(
        elsewhere,
        [
            {"email": "ADA@EXAMPLE.COM"},
            {"email": "Grace@xn--bcher-kva.de"},  # the IDNA form of bücher.de
            {"email": "alan@Bletchley.Test", "first_name": "Alan"},
            {"email": "new@example.com"},
        ],
    )
    assert [r["status"] for r in second["rows"]] == ["skipped", "skipped", "skipped", "created"]
    assert second["rows"][0]["reason"] == "already in your account"
    assert (second["created"], second["skipped"], second["current_count"]) == (1, 3, 4)
    # Silently skipped: the stored lead keeps what it had, and stays in its own pipeline.
    assert [r["lead"]["lead_email"] for r in listed(leads, elsewhere)] == ["new@example.com"]
    alan = next(r for r in listed(leads, pipeline) if "alan" in r["lead"]["lead_email"])
    assert alan["lead"]["lead_email"] == "alan@bletchley.test"
    assert alan["lead"]["lead_first_name"] is None
    # Another account has its own leads.
    theirs = other.create_pipeline()["pipeline_id"]
    assert other.upload(theirs, [{"email": "ada@example.com"}])["created"] == 1


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (b'{"email": "a@b.example"}', 400, "Request body must be a JSON array of leads"),
        (b'"a@b.example"', 400, "Request body must be a JSON array of leads"),
        (b"null", 400, "Request body must be a JSON array of leads"),
        (b"[]", 400, "Request body is an empty array: send at least one lead"),
        (b"", 400, "Request body is not valid JSON"),
        (b"[{", 400, "Request body is not valid JSON"),
        (b'[{"email": "a@b.example"}] x', 400, "Request body is not valid JSON"),
        (b'[{"email": "a\\u0000@b.example"}]', 400, "Request body is not valid JSON: strings"),
        (b'[{"email": "\xff@b.example"}]', 400, "Request body is not valid JSON: the body is"),
        (
            b"[" * 100 + b"]" * 100,
            400,
            "Request body is not valid JSON: JSON nested deeper than 64",
        ),
        (b'[{"email": "a@b.example", "custom_fields": {"n": 1e400}}]', 400, "Request body"),
    ],
)
def test_bad_bodies_are_400s(
    leads: Leads, pipeline: str, body: bytes, status: int, error: str
) -> None:
    answer = leads.request("POST", f"/v1/pipelines/{pipeline}/leads", content=body)
    assert answer.status_code == status, answer.text
    assert set(answer.json()) == {"error"}
    assert answer.json()["error"].startswith(error), answer.json()
    assert leads.pipeline(pipeline)["total_leads"] == 0


def test_bodies_over_4_mb_are_413s_before_anything_is_stored(leads: Leads, pipeline: str) -> None:
    rows = [{"email": f"u{n}@big.example", "company_description": "x" * 400} for n in range(9_500)]
    body = json.dumps(rows).encode()
    assert len(body) > 4 * 1024 * 1024
    declared = leads.request("POST", f"/v1/pipelines/{pipeline}/leads", content=body)
    assert declared.status_code == 413
    assert declared.json() == {"error": "Payload too large"}

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        for start in range(0, len(body), 256 * 1024):
            yield body[start : start + 256 * 1024]

    with httpx.Client(base_url=str(leads.client.base_url), timeout=30) as client:
        chunked = client.post(
            f"/v1/pipelines/{pipeline}/leads", headers=leads.headers, content=chunks()
        )
    assert chunked.status_code == 413
    assert chunked.json() == {"error": "Payload too large"}
    assert leads.pipeline(pipeline)["total_leads"] == 0
    # Just under the cap is fine.
    fits = json.dumps(rows[:8_000]).encode()
    assert len(fits) < 4 * 1024 * 1024
    assert leads.upload(pipeline, rows[:8_000])["created"] == 8_000


def test_too_many_rows_is_a_413(settings: Settings, tenants: Tenants) -> None:
    with serve(settings, lead_upload_max_rows=5) as live, httpx.Client(base_url=live.url) as client:
        leads = Leads(client, tenants.key("acme"))
        pipeline = leads.create_pipeline()["pipeline_id"]
        answer = leads.upload_raw(pipeline, addresses(6))
        assert answer.status_code == 413
        assert answer.json() == {"error": "At most 5 leads per upload: chunk larger lists"}
        assert leads.upload(pipeline, addresses(5))["created"] == 5


# -- the quota -----------------------------------------------------------------------------


def on_plan(tenants: Tenants, org: str, quota: int) -> None:
    tenants.plan(f"quota-{quota}", lead_quota=quota)
    tenants.set_plan(org, f"quota-{quota}")


def test_a_batch_past_the_quota_is_cut_to_fit_then_402(
    leads: Leads, tenants: Tenants, pipeline: str
) -> None:
    on_plan(tenants, "acme", 10)
    first = leads.upload(pipeline, addresses(6))
    assert (first["created"], first["current_count"], first["quota_limit"]) == (6, 6, 10)

    # Rows already in the account take no place; failed rows neither.
    second = leads.upload(
        pipeline,
        [*addresses(2), {"email": "bad"}, *addresses(6, start=100)],
    )
    assert [r["status"] for r in second["rows"]] == [
        "skipped",
        "skipped",
        "failed",
        "created",
        "created",
        "created",
        "created",
        "dropped",
        "dropped",
    ]
    assert second["rows"][-1]["reason"] == "over your plan's lead quota"
    assert second["rows"][-1]["email"] == "user105@stresstest.example"
    assert (second["created"], second["skipped"], second["failed"], second["dropped"]) == (
        4,
        2,
        1,
        2,
    )
    assert (second["current_count"], second["quota_limit"]) == (10, 10)

    # The quota counts the account, not the pipeline.
    elsewhere = leads.create_pipeline("elsewhere")["pipeline_id"]
    full = leads.upload_raw(elsewhere, addresses(1, start=500))
    assert full.status_code == 402
    assert full.json() == {
        "error": "Lead quota exceeded: your plan allows 10 leads",
        "current_count": 10,
        "quota_limit": 10,
    }
    # At the quota, a batch with nothing new is no error: its rows are skipped.
    repeat = leads.upload(elsewhere, addresses(3))
    assert (repeat["created"], repeat["skipped"]) == (0, 3)
    assert leads.pipeline(pipeline)["total_leads"] == 10
    assert leads.pipeline(elsewhere)["total_leads"] == 0


def test_the_reference_free_plan_stops_at_100(
    leads: Leads, tenants: Tenants, pipeline: str
) -> None:
    tenants.set_plan("acme", "leads-free")
    first = leads.upload(pipeline, addresses(150))
    assert (first["created"], first["dropped"], first["quota_limit"]) == (100, 50, 100)
    past = leads.upload_raw(pipeline, addresses(1, start=1000))
    assert past.status_code == 402
    assert past.json()["current_count"] == 100


def test_test_keys_have_no_lead_quota(leads: Leads, tenants: Tenants) -> None:
    on_plan(tenants, "acme", 5)
    test = Leads(leads.client, tenants.key("acme", environment="test"))
    pipeline = test.create_pipeline()["pipeline_id"]
    answer = test.upload(pipeline, addresses(20))
    assert (answer["created"], answer["quota_limit"]) == (20, None)


@pytest.mark.parametrize("rounds", [3])
def test_concurrent_batches_never_pass_the_quota_together(
    leads: Leads, tenants: Tenants, rounds: int
) -> None:
    """Three batches of one account at once, into three pipelines, each of which alone
    would fit: the account lock serialises them at the quota check."""
    quota = 100
    on_plan(tenants, "acme", quota)
    url = str(leads.client.base_url)
    total = 0
    for round_ in range(rounds):
        pipelines = [leads.create_pipeline(f"race {round_}.{n}")["pipeline_id"] for n in range(3)]
        batches = [addresses(60, start=round_ * 1000 + n * 100) for n in range(3)]
        start = threading.Barrier(3)

        def send(
            pipeline: str, rows: list[dict[str, str]], start: threading.Barrier = start
        ) -> httpx.Response:
            with httpx.Client(base_url=url, timeout=60) as client:
                start.wait()
                return client.post(
                    f"/v1/pipelines/{pipeline}/leads", headers=leads.headers, json=rows
                )

        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            answers = list(pool.map(send, pipelines, batches))
        statuses = sorted(answer.status_code for answer in answers)
        bodies = [answer.json() for answer in answers if answer.status_code == 202]
        created = sum(body["created"] for body in bodies)
        if round_ == 0:
            # 180 new addresses for 100 places, in whatever order the lock let them in:
            # 60 land, then 40 (20 dropped), then the third finds the quota full.
            assert statuses == [202, 202, 402], [a.text for a in answers]
            assert sorted(body["created"] for body in bodies) == [40, 60]
            assert sorted(body["dropped"] for body in bodies) == [0, 20]
        else:
            # Already at the quota: every batch is refused whole.
            assert statuses == [402, 402, 402]
        for answer in answers:
            if answer.status_code == 402:
                assert answer.json()["quota_limit"] == quota
                assert answer.json()["current_count"] <= quota
        total += created
        landed = sum(leads.pipeline(p)["total_leads"] for p in pipelines)
        assert landed == created
    assert total == quota


# -- the concurrent-upload cap -------------------------------------------------------------


class StalledUpload:
    """An upload whose body arrives in two halves, the second when `release()` is called:
    it holds its slot in between."""

    def __init__(self, url: str, headers: dict[str, str], path: str, rows: list[Any]) -> None:
        self.gate = threading.Event()
        body = json.dumps(rows).encode()
        half = len(body) // 2

        def chunks() -> Iterator[bytes]:
            yield body[:half]
            self.gate.wait(timeout=30)
            yield body[half:]

        def send() -> httpx.Response:
            with httpx.Client(base_url=url, timeout=60) as client:
                return client.post(path, headers=headers, content=chunks())

        self.pool = concurrent.futures.ThreadPoolExecutor(1)
        self.answer = self.pool.submit(send)

    def release(self) -> httpx.Response:
        self.gate.set()
        answer = self.answer.result(timeout=60)
        self.pool.shutdown()
        return answer


def stall(leads: Leads, url: str, pipeline: str, count: int, start: int = 0) -> list[StalledUpload]:
    stalled = [
        StalledUpload(
            url,
            leads.headers,
            f"/v1/pipelines/{pipeline}/leads",
            addresses(10, start=start + 100 * n),
        )
        for n in range(count)
    ]
    time.sleep(1.0)  # each has sent its headers and half its body, and holds a slot
    return stalled


def test_a_fourth_concurrent_upload_is_a_429(leads: Leads, other: Leads, pipeline: str) -> None:
    url = str(leads.client.base_url)
    stalled = stall(leads, url, pipeline, 3)
    try:
        fourth = leads.upload_raw(pipeline, addresses(1, start=5000))
        assert fourth.status_code == 429
        assert fourth.headers["Retry-After"] == "1"
        assert fourth.json() == {
            "error": "Too many concurrent uploads: at most 3 per account; retry when one finishes"
        }
        # The cap is per account: another organisation uploads meanwhile.
        theirs = other.create_pipeline()["pipeline_id"]
        assert other.upload(theirs, addresses(1))["created"] == 1
        # Reads are not uploads.
        assert leads.page(pipeline)["pagination"]["total"] == 0
    finally:
        answers = [upload.release() for upload in stalled]
    assert [answer.status_code for answer in answers] == [202, 202, 202]
    # Every slot came back: three at once again, then a fourth.
    assert leads.upload(pipeline, addresses(1, start=5000))["created"] == 1
    assert leads.pipeline(pipeline)["total_leads"] == 31


def test_slots_come_back_after_failed_uploads(leads: Leads, pipeline: str) -> None:
    for _ in range(4):  # more failures than slots
        assert leads.upload_raw(pipeline, []).status_code == 400
        assert (
            leads.request("POST", f"/v1/pipelines/{pipeline}/leads", content=b"[").status_code
            == 400
        )
        assert leads.upload_raw("not-a-uuid", addresses(1)).status_code == 404
    assert leads.upload(pipeline, addresses(1))["created"] == 1


def test_the_cap_holds_across_server_processes(settings: Settings, tenants: Tenants) -> None:
    """With the slots in the database (PostgreSQL's default; forced here on SQLite too),
    two servers on one database share an account's three slots."""
    shared = settings.model_copy(update={"rate_limit_backend": "database"})
    key = tenants.key("acme")

    async def leases(session: AsyncSession) -> int:
        return int(await session.scalar(select(func.count()).select_from(LeadUploadSlot)) or 0)

    def held(count: int) -> None:
        """Wait until the stalled uploads hold their slots (a busy machine is slow to)."""
        deadline = time.monotonic() + 30
        while tenants.run(leases) < count:
            assert time.monotonic() < deadline, "the stalled uploads never took their slots"
            time.sleep(0.05)

    with (
        serve(shared) as first,
        serve(shared) as second,
        httpx.Client(base_url=first.url, timeout=60) as one,
        httpx.Client(base_url=second.url, timeout=60) as two,
    ):
        leads = Leads(one, key)
        pipeline = leads.create_pipeline()["pipeline_id"]
        stalled = stall(leads, first.url, pipeline, 2)
        stalled += stall(leads, second.url, pipeline, 1, start=1000)
        held(3)
        try:
            refused = two.post(
                f"/v1/pipelines/{pipeline}/leads",
                headers=bearer(key),
                json=addresses(1, start=9000),
            )
            assert refused.status_code == 429
            assert refused.headers["Retry-After"] == "1"
        finally:
            answers = [upload.release() for upload in stalled]
        assert [answer.status_code for answer in answers] == [202, 202, 202]
        assert leads.upload(pipeline, addresses(1, start=9000))["created"] == 1


def test_a_batch_of_addresses_the_account_has_changes_nothing(leads: Leads, pipeline: str) -> None:
    leads.upload(pipeline, [{"email": "ada@example.com", "first_name": "Ada"}])
    again = leads.upload(
        pipeline, [{"email": "ada@example.com", "first_name": "Ada", "company": "AE"}]
    )
    assert (again["created"], again["skipped"], again["total_leads"]) == (0, 1, 1)
    assert listed(leads, pipeline)[0]["lead"]["lead_company"] is None
