"""`GET /v1/pipelines/:id/leads`: the reference's page, its paging rules, the cookbook's
export loop, and what we add (offset walks as of their first page, a cursor, ndjson and
CSV exports).

Why an offset loop could repeat rows, and what keeps it from doing so: the order is
newest first, so a lead uploaded while a client pages lands at the top and would push
every row below it one place down; the next offset page would then start with rows the
previous page already had. So the first page (offset 0) marks the pipeline as it is (its
newest row and its total) for the key, and the key's later offset pages of that size list
only the rows at or below the mark: the cookbook's loop exports every row that was there
when it began, once, while another client keeps uploading. The tiebreak on the id is what
the reference's own promise is about: a bulk insert gives thousands of rows one
timestamp, and without it two reads could order them differently.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import csv
import io
import json
import threading
import time
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from helpers.server import LiveServer
from helpers.tenants import Tenants
from leads.conftest import Leads, addresses
from openenrich.app import create_app
from openenrich.config import Settings
from openenrich.db import Database
from openenrich.ids import utcnow
from openenrich.leads import marks, uploads
from openenrich.leads.models import LEAD_FIELDS, LeadListMark
from openenrich.tenancy import service

ROW_FIELDS = {
    "pipeline_lead_id",
    "pipeline_lead_stage",
    "pipeline_lead_email_validation_status",
    "pipeline_lead_email_validation",
    "pipeline_lead_created_at",
    "lead",
}
LEAD_KEYS = {
    "lead_id",
    "lead_email",
    *(f"lead_{name}" for name in LEAD_FIELDS),
    "lead_custom_fields",
    "lead_enrichment_status",
    "lead_created_at",
    "lead_updated_at",
}


def emails(rows: list[dict[str, Any]]) -> list[str]:
    return [row["lead"]["lead_email"] for row in rows]


def test_list_leads_as_the_reference_does(leads: Leads, pipeline: str) -> None:
    leads.upload(
        pipeline,
        [
            {
                "email": "ada@example.com",
                "company": "Analytical Engines",
                "custom_fields": {"source": "Apollo", "tier": "A"},
            }
        ],
    )
    # curl "…/v1/pipelines/$PIPELINE_ID/leads?limit=10000&offset=0"
    answer = leads.request("GET", f"/v1/pipelines/{pipeline}/leads?limit=10000&offset=0")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    page = answer.json()
    assert set(page) == {"data", "pagination"}
    assert page["pagination"] == {
        "limit": 10000,
        "offset": 0,
        "total": 1,
        "has_more": False,
        "next_cursor": None,
    }
    row = page["data"][0]
    assert set(row) == ROW_FIELDS
    assert row["pipeline_lead_stage"] == "IMPORTED"
    assert set(row["lead"]) == LEAD_KEYS
    assert row["lead"]["lead_email"] == "ada@example.com"
    assert row["lead"]["lead_company"] == "Analytical Engines"
    assert row["lead"]["lead_custom_fields"] == {"source": "Apollo", "tier": "A"}
    assert row["lead"]["lead_enrichment_status"] == "NOT_ENRICHED"


def test_paging_rules(leads: Leads, pipeline: str) -> None:
    leads.upload(pipeline, addresses(1005))
    page = leads.page(pipeline)
    assert len(page["data"]) == 1000  # default
    assert page["pagination"]["limit"] == 1000
    assert page["pagination"]["has_more"] is True
    assert page["pagination"]["total"] == 1005
    for asked, clamped in [(0, 1), (-5, 1), (20_000, 10_000), (99999999999999999999999, 10_000)]:
        assert leads.page(pipeline, limit=asked)["pagination"]["limit"] == clamped
    last = leads.page(pipeline, limit=10, offset=1000)
    assert len(last["data"]) == 5
    assert last["pagination"] == {
        "limit": 10,
        "offset": 1000,
        "total": 1005,
        "has_more": False,
        "next_cursor": None,
    }
    beyond = leads.page(pipeline, offset=5000)
    assert beyond["data"] == []
    assert beyond["pagination"]["has_more"] is False
    for params, error in [
        ({"offset": -1}, "offset must be >= 0"),
        ({"offset": 2**63}, "offset must be at most 9223372036854775807"),
        ({"offset": "abc"}, "query.offset: Input should be a valid integer"),
        ({"limit": "1.5"}, "query.limit: Input should be a valid integer"),
        ({"limit": ""}, "query.limit: Input should be a valid integer"),
        ({"format": "xml"}, "query.format: Input should be 'json', 'ndjson' or 'csv'"),
        ({"format": "ndjson", "limit": 5}, "format=ndjson streams the whole pipeline"),
        ({"format": "csv", "offset": 0}, "format=csv streams the whole pipeline"),
    ]:
        answer = leads.request("GET", f"/v1/pipelines/{pipeline}/leads", params=params)
        assert answer.status_code == 400, (params, answer.text)
        assert answer.json()["error"].startswith(error), answer.json()


def test_newest_first_with_the_id_as_tiebreak(leads: Leads, pipeline: str) -> None:
    leads.upload(pipeline, addresses(3, domain="first.example"))
    leads.upload(pipeline, addresses(3, domain="second.example"))
    rows = leads.page(pipeline)["data"]
    # The newer upload first; within one upload (one timestamp) the last row first.
    assert emails(rows) == [
        "user2@second.example",
        "user1@second.example",
        "user0@second.example",
        "user2@first.example",
        "user1@first.example",
        "user0@first.example",
    ]
    keys = [(row["pipeline_lead_created_at"], row["pipeline_lead_id"]) for row in rows]
    assert keys == sorted(keys, reverse=True)
    # One upload, one timestamp: the id alone orders its rows.
    assert len({row["pipeline_lead_created_at"] for row in rows[:3]}) == 1


def offset_export(leads: Leads, pipeline: str, limit: int) -> list[dict[str, Any]]:
    """The cookbook's loop: pages by offset until has_more is false."""
    exported: list[dict[str, Any]] = []
    offset = 0
    while True:
        page = leads.page(pipeline, limit=limit, offset=offset)
        exported.extend(page["data"])
        if not page["pagination"]["has_more"]:
            return exported
        offset += limit


def cursor_export(leads: Leads, pipeline: str, limit: int) -> list[Any]:
    exported: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": limit}
        if cursor is not None:
            params["after"] = cursor
        page = leads.page(pipeline, **params)
        exported.extend(page["data"])
        cursor = page["pagination"]["next_cursor"]
        assert (cursor is not None) == page["pagination"]["has_more"]
        if cursor is None:
            return exported


def test_the_cookbook_export_after_rapid_bulk_inserts(leads: Leads, pipeline: str) -> None:
    """Six uploads milliseconds apart, each giving its 500 rows one timestamp: the offset
    loop sees every row once (the tiebreak at work), and so does the cursor."""
    for batch in range(6):
        leads.upload(pipeline, addresses(500, start=batch * 500))
    by_offset = offset_export(leads, pipeline, limit=700)
    ids = [row["pipeline_lead_id"] for row in by_offset]
    assert len(ids) == len(set(ids)) == 3000
    assert sorted(emails(by_offset)) == sorted(r["email"] for r in addresses(3000))
    assert cursor_export(leads, pipeline, limit=700) == by_offset


class Uploading:
    """Another client uploading batch after batch into `pipeline` while a test pages;
    `between_pages()` returns once one more batch has landed, so every two pages have at
    least one upload between them, however loaded the machine."""

    def __init__(self, leads: Leads, pipeline: str, key: str) -> None:
        self.leads, self.pipeline, self.key = leads, pipeline, key
        self.landed = threading.Event()
        self.stop = threading.Event()
        self.pool = concurrent.futures.ThreadPoolExecutor(1)
        self.sent = 0

    def __enter__(self) -> Uploading:
        self.uploads = self.pool.submit(self._keep_uploading)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.sent = self.uploads.result() if exc[0] is None else 0
        self.pool.shutdown()

    def _keep_uploading(self) -> int:
        sent = 0
        with httpx.Client(base_url=str(self.leads.client.base_url), timeout=60) as client:
            uploader = Leads(client, self.key)
            while not self.stop.is_set():
                uploader.upload(self.pipeline, addresses(50, start=100_000 + sent))
                sent += 50
                self.landed.set()
        return sent

    def between_pages(self) -> None:
        self.landed.clear()
        while not self.landed.wait(0.05):
            if self.uploads.done():
                self.uploads.result()  # raises what stopped it
                raise AssertionError("the uploader stopped")


def test_the_cookbook_loop_exports_each_row_once_while_another_client_uploads(
    leads: Leads, pipeline: str, tenants: Tenants
) -> None:
    """The cookbook's offset loop, as written (in pages of 150 here), while another client
    uploads batch after batch, at least one between every two pages: it exports exactly
    the rows that were there at its first page, each once, in order; `total` and
    `has_more` are those of the pipeline then."""
    leads.upload(pipeline, addresses(2000))
    exported: list[dict[str, Any]] = []
    totals: list[int] = []
    with Uploading(leads, pipeline, tenants.key("acme")) as uploading:
        offset = 0
        while True:
            page = leads.page(pipeline, limit=150, offset=offset)
            exported.extend(page["data"])
            totals.append(page["pagination"]["total"])
            if not page["pagination"]["has_more"]:
                break
            offset += 150
            uploading.between_pages()
    sent = uploading.sent

    ids = [row["pipeline_lead_id"] for row in exported]
    marked = totals[0]
    assert set(totals) == {marked}
    assert len(ids) == len(set(ids)) == marked >= 2000
    assert set(emails(exported)) >= {row["email"] for row in addresses(2000)}
    # What the pipeline holds now, newest first: those added since the first page sort
    # above the rows that were there, and those are the export, all of them.
    everything = [row["pipeline_lead_id"] for row in offset_export(leads, pipeline, 10_000)]
    assert len(everything) == 2000 + sent > marked
    assert ids == everything[len(everything) - marked :]


def test_a_first_page_waits_for_an_upload_in_flight(
    leads: Leads, pipeline: str, settings: Settings
) -> None:
    """An upload holds its account's lock from its quota check until it commits (here the
    upload service's own transaction, held open by the test): a first page waits for it,
    and its mark counts what the upload adds."""
    leads.upload(pipeline, addresses(10))
    holding, release = threading.Event(), threading.Event()

    async def upload_held_open() -> None:
        database = Database.from_settings(settings)
        try:
            principal = await service.authenticate(database, leads.key)
            async with database.session() as session:
                rows = addresses(5, start=10)
                await uploads.upload(session, principal, pipeline, rows, max_rows=100)
                holding.set()
                await asyncio.to_thread(release.wait, 30)
                await session.commit()
        finally:
            await database.dispose()

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        upload = pool.submit(asyncio.run, upload_held_open())
        try:
            assert holding.wait(30)
            first = pool.submit(leads.page, pipeline, limit=100)
            time.sleep(0.5)
            assert not first.done()
        finally:
            release.set()
        upload.result()
        page = first.result()
    assert page["pagination"]["total"] == 15
    assert emails(page["data"]) == [f"user{n}@stresstest.example" for n in range(14, -1, -1)]


def test_an_offset_page_without_a_mark_is_live(leads: Leads, pipeline: str) -> None:
    """A walk that starts past offset 0 has no mark: each page is the pipeline as it is."""
    leads.upload(pipeline, addresses(30))
    page = leads.page(pipeline, limit=10, offset=10)
    assert emails(page["data"]) == [f"user{n}@stresstest.example" for n in range(19, 9, -1)]
    assert page["pagination"]["total"] == 30
    leads.upload(pipeline, addresses(5, start=30))
    page = leads.page(pipeline, limit=10, offset=10)
    assert emails(page["data"]) == [f"user{n}@stresstest.example" for n in range(24, 14, -1)]
    assert page["pagination"]["total"] == 35


def test_pagination_total_is_the_marked_total(leads: Leads, other: Leads, pipeline: str) -> None:
    leads.upload(pipeline, addresses(30))
    first = leads.page(pipeline, limit=10)
    assert first["pagination"]["total"] == 30
    leads.upload(pipeline, addresses(5, start=30))
    assert leads.pipeline(pipeline)["total_leads"] == 35
    pages = [leads.page(pipeline, limit=10, offset=offset) for offset in (10, 20)]
    assert [page["pagination"]["total"] for page in pages] == [30, 30]
    assert [page["pagination"]["has_more"] for page in pages] == [True, False]
    listed = emails(first["data"]) + emails(pages[0]["data"]) + emails(pages[1]["data"])
    assert listed == [f"user{n}@stresstest.example" for n in range(29, -1, -1)]
    # A new walk marks the pipeline as it is now.
    assert leads.page(pipeline, limit=10, offset=0)["pagination"]["total"] == 35
    assert leads.page(pipeline, limit=10, offset=30)["pagination"] == {
        "limit": 10,
        "offset": 30,
        "total": 35,
        "has_more": False,
        "next_cursor": None,
    }
    # Another tenant's pipeline is not found, with a mark or without.
    for offset in (0, 10):
        answer = other.request(
            "GET", f"/v1/pipelines/{pipeline}/leads", params={"limit": 10, "offset": offset}
        )
        assert answer.status_code == 404
        assert answer.json() == {"error": "Pipeline not found"}


def test_a_walk_that_began_on_an_empty_pipeline_stays_empty(leads: Leads, pipeline: str) -> None:
    assert leads.page(pipeline, limit=5)["pagination"]["total"] == 0
    leads.upload(pipeline, addresses(12))
    later = leads.page(pipeline, limit=5, offset=5)
    assert later["data"] == []
    assert later["pagination"]["total"] == 0
    assert later["pagination"]["has_more"] is False
    assert len(leads.page(pipeline, limit=5, offset=0)["data"]) == 5  # a new walk


def test_marks_are_per_key_and_per_page_size(leads: Leads, pipeline: str, tenants: Tenants) -> None:
    """Each key's walk has its own mark, a read-only key's too; a page size is a walk of
    its own (another size at offset > 0 is live)."""
    reader = Leads(leads.client, tenants.key("acme", role="read"))
    third = Leads(leads.client, tenants.key("acme"))
    leads.upload(pipeline, addresses(30))
    before = emails(offset_export(leads, pipeline, 10_000))
    leads.page(pipeline, limit=10)
    reader.page(pipeline, limit=10, offset=0)
    leads.upload(pipeline, addresses(5, start=30))
    now = emails(offset_export(leads, pipeline, 10_000))

    assert emails(leads.page(pipeline, limit=10, offset=10)["data"]) == before[10:20]
    assert emails(reader.page(pipeline, limit=10, offset=10)["data"]) == before[10:20]
    assert emails(third.page(pipeline, limit=10, offset=10)["data"]) == now[10:20]  # no mark
    assert emails(leads.page(pipeline, limit=5, offset=10)["data"]) == now[10:15]  # no mark

    # The reader starts again: its mark moves, the other key's stays.
    reader.page(pipeline, limit=10)
    assert emails(reader.page(pipeline, limit=10, offset=10)["data"]) == now[10:20]
    last = leads.page(pipeline, limit=10, offset=20)
    assert emails(last["data"]) == before[20:30]
    assert last["pagination"]["has_more"] is False


def test_an_expired_mark_gives_the_live_listing(settings: Settings, tenants: Tenants) -> None:
    brief = settings.model_copy(update={"leads_offset_snapshot_seconds": 0.05})
    with (
        LiveServer(create_app(brief)) as live,
        httpx.Client(base_url=live.url, timeout=30) as client,
    ):
        leads = Leads(client, tenants.key("acme"))
        pipeline = leads.create_pipeline()["pipeline_id"]
        leads.upload(pipeline, addresses(30))
        leads.page(pipeline, limit=10)
        leads.upload(pipeline, addresses(5, start=30))
        time.sleep(0.2)
        page = leads.page(pipeline, limit=10, offset=10)
    assert emails(page["data"]) == [f"user{n}@stresstest.example" for n in range(24, 14, -1)]
    assert page["pagination"]["total"] == 35


def test_housekeeping_purges_stale_marks(leads: Leads, pipeline: str, settings: Settings) -> None:
    leads.upload(pipeline, addresses(30))
    leads.page(pipeline, limit=10)
    leads.page(pipeline, limit=20)
    leads.upload(pipeline, addresses(5, start=30))

    async def age_and_purge() -> int:
        database = Database.from_settings(settings)
        try:
            async with database.session() as session:
                seconds = settings.leads_offset_snapshot_seconds + 1
                await session.execute(
                    update(LeadListMark)
                    .where(LeadListMark.page_size == 10)
                    .values(used_at=utcnow() - timedelta(seconds=seconds))
                )
                await session.commit()
            await marks.purge(database, settings)
            async with database.session() as session:
                left = await session.scalar(select(func.count()).select_from(LeadListMark))
            return int(left or 0)
        finally:
            await database.dispose()

    assert asyncio.run(age_and_purge()) == 1
    assert leads.page(pipeline, limit=10, offset=10)["pagination"]["total"] == 35  # live
    assert leads.page(pipeline, limit=20, offset=20)["pagination"]["total"] == 30  # marked


def test_a_cursor_walk_while_another_client_keeps_uploading(leads: Leads, pipeline: str) -> None:
    leads.upload(pipeline, addresses(2000))
    before = [row["pipeline_lead_id"] for row in offset_export(leads, pipeline, 10_000)]
    walked: list[dict[str, Any]] = []
    with Uploading(leads, pipeline, leads.key) as uploading:
        cursor = None
        while True:
            page = leads.page(pipeline, limit=150, **({"after": cursor} if cursor else {}))
            walked.extend(page["data"])
            cursor = page["pagination"]["next_cursor"]
            if cursor is None:
                break
            uploading.between_pages()
    ids = [row["pipeline_lead_id"] for row in walked]
    assert len(ids) == len(set(ids))
    # Everything that was there, in order, after whatever landed before the first page.
    assert ids[len(ids) - len(before) :] == before
    assert uploading.sent >= 50 * 13  # one batch between every two of the 14 pages


def test_cursor_errors(leads: Leads, pipeline: str) -> None:
    leads.upload(pipeline, addresses(3))
    cursor = leads.page(pipeline, limit=1)["pagination"]["next_cursor"]
    elsewhere = leads.create_pipeline("elsewhere")["pipeline_id"]
    leads.upload(elsewhere, addresses(3, start=10))
    unknown = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
    message = "after: not a cursor of this pipeline's listing (use pagination.next_cursor)"
    for path, params in [
        (pipeline, {"after": "nope"}),
        (pipeline, {"after": "!" * 22}),
        (pipeline, {"after": ""}),
        (pipeline, {"after": "x" * 5000}),
        (pipeline, {"after": unknown}),
        (elsewhere, {"after": cursor}),  # a cursor of another pipeline
        (pipeline, {"after": unknown, "format": "ndjson"}),
    ]:
        answer = leads.request("GET", f"/v1/pipelines/{path}/leads", params=params)
        assert answer.status_code == 400, answer.text
        assert answer.json() == {"error": message}
    both = leads.request(
        "GET", f"/v1/pipelines/{pipeline}/leads", params={"after": cursor, "offset": 0}
    )
    assert both.status_code == 400
    assert both.json()["error"].startswith("offset and after cannot be combined")


def test_ndjson_and_csv_export_the_whole_pipeline(leads: Leads, pipeline: str) -> None:
    """Past one export batch (5,000 rows), in the listing's order, with what the rows hold."""
    rows = addresses(5_200)
    rows[-1] = {
        "email": "ada@example.com",
        "first_name": 'Ada, "the" Countess',
        "custom_fields": {"source": "Apollo", "note": "line\nbreak"},
    }
    leads.upload(pipeline, rows[:2600])
    leads.upload(pipeline, rows[2600:])
    pages = offset_export(leads, pipeline, 10_000)

    answer = leads.request("GET", f"/v1/pipelines/{pipeline}/leads", params={"format": "ndjson"})
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/x-ndjson"
    assert answer.headers["content-disposition"] == (
        f'attachment; filename="pipeline-{pipeline}.ndjson"'
    )
    lines = answer.text.splitlines()
    assert [json.loads(line) for line in lines] == pages

    answer = leads.request("GET", f"/v1/pipelines/{pipeline}/leads", params={"format": "csv"})
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    table = list(csv.DictReader(io.StringIO(answer.text)))
    assert len(table) == 5_200
    assert list(table[0]) == [
        "pipeline_lead_id",
        "pipeline_lead_stage",
        "pipeline_lead_email_validation_status",
        "pipeline_lead_email_validation",
        "pipeline_lead_created_at",
        "lead_id",
        "lead_email",
        *(f"lead_{name}" for name in LEAD_FIELDS),
        "lead_custom_fields",
        "lead_enrichment_status",
        "lead_created_at",
        "lead_updated_at",
    ]
    assert [row["pipeline_lead_id"] for row in table] == [r["pipeline_lead_id"] for r in pages]
    ada = table[0]  # the last row uploaded lists first
    assert ada["lead_email"] == "ada@example.com"
    assert ada["lead_first_name"] == 'Ada, "the" Countess'
    assert json.loads(ada["lead_custom_fields"]) == {"source": "Apollo", "note": "line\nbreak"}
    assert ada["lead_last_name"] == ""  # null is an empty cell
    assert ada["pipeline_lead_created_at"] == pages[0]["pipeline_lead_created_at"]

    # `after` resumes an export where a page (or a broken download) ended.
    cursor = leads.page(pipeline, limit=5_100)["pagination"]["next_cursor"]
    rest = leads.request(
        "GET", f"/v1/pipelines/{pipeline}/leads", params={"format": "ndjson", "after": cursor}
    )
    assert [json.loads(line) for line in rest.text.splitlines()] == pages[5_100:]


@pytest.mark.parametrize("format", ["ndjson", "csv"])
def test_exports_of_an_empty_pipeline(leads: Leads, pipeline: str, format: str) -> None:
    answer = leads.request("GET", f"/v1/pipelines/{pipeline}/leads", params={"format": format})
    assert answer.status_code == 200
    if format == "csv":
        assert answer.text.startswith("pipeline_lead_id,")
        assert answer.text.count("\n") == 1
    else:
        assert answer.text == ""


def jq_batch(offset: int) -> bytes:
    """What `jq -n --argjson o $offset '[range($o; $o+4000) | {email: …}]'` prints."""
    rows = [{"email": f"user{n}@stresstest.example"} for n in range(offset, offset + 4000)]
    return json.dumps(rows, indent=2).encode() + b"\n"


def test_the_cookbook_upload_of_20000_then_the_export_recipe(leads: Leads, pipeline: str) -> None:
    """ "Upload 20,000 leads" (its upload part: five `--data-binary @-` calls of 4,000),
    then "Export every lead in a pipeline as JSON", both as the cookbook writes them."""
    for offset in (0, 4000, 8000, 12000, 16000):
        answer = leads.request(
            "POST",
            f"/v1/pipelines/{pipeline}/leads",
            headers={"Content-Type": "application/json"},
            content=jq_batch(offset),
        )
        assert answer.status_code == 202, answer.text
        assert answer.json()["created"] == 4000
    assert leads.pipeline(pipeline)["total_leads"] == 20_000

    exported: list[str] = []  # all-leads.ndjson
    offset = 0
    while True:
        page = leads.request(
            "GET", f"/v1/pipelines/{pipeline}/leads?limit=10000&offset={offset}"
        ).json()
        exported.extend(json.dumps(row) for row in page["data"])
        if page["pagination"]["has_more"] is not True:
            break
        offset += 10000
    assert offset == 10000  # two pages
    rows = [json.loads(line) for line in exported]
    assert len({row["pipeline_lead_id"] for row in rows}) == len(rows) == 20_000
    assert emails(rows)[0] == "user19999@stresstest.example"
    assert emails(rows)[-1] == "user0@stresstest.example"
