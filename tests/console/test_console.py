"""The console in a real browser, against a real server: sign in, create a stream, ingest
with the CLI, see the events on the Streams and Query pages, start a run and watch it
complete with its PDF, upload leads and enrich them against the fake LLM server, compare
and fuse two models' records, and the admin page. Every page is photographed at 1280 and
390 pixels wide under test-output/console/."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from typer.testing import CliRunner

from helpers.server import LiveServer, free_port
from helpers.tenants import Tenants
from leads.conftest import EchoLLM
from openenrich.app import create_app
from openenrich.cli import app as cli_app
from openenrich.config import Settings

# Screenshots of every page, at each width, for a person to look at.
OUTPUT = Path(__file__).resolve().parents[2] / "test-output" / "console"
QUICKSTART = "Verify identity: Rahul Sharma, +91 98xxxxxx10, PAN ABCDE1234F"
PAGES = ("streams", "query", "runs", "leads", "entities", "admin")
SCHEMA = {
    "type": "object",
    "properties": {"legal_name": {"type": "string"}, "headquarters": {"type": "string"}},
    "required": ["legal_name"],
}


@pytest.fixture
def fake() -> Iterator[EchoLLM]:
    with EchoLLM(about="Acme") as server:  # JSON answers: "<field> of Acme"
        yield server


@pytest.fixture
def settings(tmp_path: Path, sqlite_template: Path, fake: EchoLLM) -> Settings:
    """SQLite only: what the browser sees does not depend on the database, which the
    other suites run on PostgreSQL too."""
    path = tmp_path / "data" / "openenrich.db"
    path.parent.mkdir(parents=True)
    shutil.copyfile(sqlite_template, path)
    return Settings(
        port=free_port(),  # the run's report_url points at it
        data_dir=tmp_path / "data",
        database_url=f"sqlite:///{path}",
        provider_openai_api_key="sk-server-openai",
        provider_openai_base_url=f"{fake.url}/v1",
        llm_backoff_seconds=0.01,
        job_poll_seconds=0.2,
        sse_heartbeat_seconds=0.3,
    )


@pytest.fixture
def server(settings: Settings) -> Iterator[LiveServer]:
    with LiveServer(create_app(settings), port=settings.port) as live:
        yield live


@pytest.fixture
def key(tenants: Tenants) -> str:
    return tenants.key("acme", role="admin")


@pytest.fixture
def page(browser: Browser, server: LiveServer) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=server.url)
    page = context.new_page()
    failures: list[str] = []
    page.on("pageerror", lambda error: failures.append(str(error)))
    yield page
    context.close()
    assert not failures, f"the console's script failed: {failures}"


# The elements that reach past the window's right edge (outside a scrolling region).
WIDER_THAN_THE_WINDOW = """() => [...document.querySelectorAll("body *")]
  .filter((e) => !e.closest(".scroll, pre") && e.getBoundingClientRect().right > innerWidth + 1)
  .map((e) => `${e.tagName.toLowerCase()}${e.id ? "#" + e.id : ""}.${e.className}`)
  .slice(0, 5)"""


def photograph(page: Page, name: str) -> None:
    for width in (1280, 390):
        folder = OUTPUT / str(width)
        folder.mkdir(parents=True, exist_ok=True)
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=folder / f"{name}.png", full_page=True)
        # Wide tables scroll inside their own region; the page itself never sideways.
        wider = page.evaluate(WIDER_THAN_THE_WINDOW)
        assert not wider, f"{name} at {width} px: {wider}"
        assert page.evaluate("document.documentElement.scrollWidth") <= width, (name, width)
    page.set_viewport_size({"width": 1280, "height": 900})


def sign_in(page: Page, key: str) -> None:
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/console/sign-in$"))
    page.get_by_label("API key", exact=True).fill(key)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/console/streams$"))


def test_sign_in_refuses_a_wrong_key_in_words(page: Page, key: str) -> None:
    page.goto("/console/query")
    expect(page).to_have_url(re.compile(r"/console/sign-in$"))
    page.get_by_label("API key", exact=True).fill("sk_live_" + "x" * 40)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Invalid, revoked, or expired API key")
    photograph(page, "sign-in")
    page.get_by_label("API key", exact=True).fill(key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#who")).to_contain_text("acme · live · admin")
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/console/sign-in$"))
    page.goto("/console/admin")
    expect(page).to_have_url(re.compile(r"/console/sign-in$"))


def test_streams_and_query(page: Page, server: LiveServer, key: str, tmp_path: Path) -> None:
    sign_in(page, key)
    page.get_by_label("Stream id").fill("clicks")
    page.get_by_role("button", name="Create stream").click()
    expect(page.get_by_role("link", name="clicks")).to_be_visible()
    page.get_by_label("Stream id").fill("bad id!")
    page.get_by_label("Stream id").evaluate("input => input.removeAttribute('pattern')")
    page.get_by_role("button", name="Create stream").click()
    expect(page.locator("#streams .error")).to_contain_text("stream_id")

    events = tmp_path / "clicks.ndjson"
    events.write_text("".join(json.dumps({"user": f"u{i}", "n": i}) + "\n" for i in range(500)))
    runner = CliRunner(env={"OPENENRICH_URL": server.url, "OPENENRICH_API_KEY": key})
    ingested = runner.invoke(cli_app, ["ingest", str(events), "--stream", "clicks"])
    assert ingested.exit_code == 0, ingested.output

    page.reload()
    expect(page.locator("#activity-summary")).to_contain_text("500 events")
    expect(page.get_by_role("img", name=re.compile("busiest minute had 500"))).to_be_visible()
    page.get_by_role("link", name="clicks").click()
    page.get_by_role("button", name="Write buffered events to Parquet now").click()
    expect(page.locator("#flushed")).to_contain_text("Wrote 500 events")
    expect(page.locator("#snippets")).to_contain_text("CREATE OR REPLACE VIEW")
    photograph(page, "streams")

    page.get_by_role("link", name="Query").click()
    page.get_by_role("textbox", name=re.compile("^SQL")).fill(
        "SELECT count(*) AS events, max(n) AS top FROM clicks"
    )
    page.get_by_role("button", name="Run query").click()
    results = page.get_by_role("table", name="Results")
    expect(results.locator("tbody td")).to_have_text(["500", "499"])
    with page.expect_download() as download:
        page.get_by_role("button", name="Download CSV").click()
    assert Path(download.value.path()).read_text().splitlines() == ['"events","top"', "500,499"]
    page.get_by_role("textbox", name=re.compile("^SQL")).fill("SELECT * FROM nowhere")
    page.get_by_role("button", name="Run query").click()
    expect(page.locator("#query-form .error")).to_contain_text("nowhere")
    photograph(page, "query")


def test_a_run_completes_with_its_pdf(page: Page, key: str) -> None:
    sign_in(page, key)
    page.get_by_role("link", name="Runs").click()
    page.get_by_label("What to verify").fill(QUICKSTART)
    page.get_by_label("Workflow").select_option("kyc-verification")
    page.get_by_role("button", name="Start run").click()
    facts = page.locator("#run-facts")
    expect(facts).to_contain_text("completed", timeout=30_000)
    expect(page.locator("#timeline")).to_contain_text("run.completed")
    expect(page.locator("#answer")).to_contain_text("PAN ABCDE1234F is not valid")
    expect(page.get_by_role("table", name="Checks")).to_contain_text("pan_verification")
    pdf = page.get_by_role("link", name="Report as PDF").get_attribute("href")
    assert pdf is not None
    answer = page.request.get(pdf)
    assert answer.status == 200
    assert answer.headers["content-type"] == "application/pdf"
    assert answer.body().startswith(b"%PDF")
    expect(page.get_by_role("table", name="Your runs, newest first")).to_contain_text("completed")
    photograph(page, "runs")


def test_a_plan_is_approved_on_the_page(page: Page, client: httpx.Client, key: str) -> None:
    procedure = "---\nchecks: [pan_verification]\nplan: true\n---\n# Plan first\n"
    saved = client.post(
        "/api/v1/workflows",
        headers={"Authorization": f"Bearer {key}"},
        json={"slug": "plan-first", "content": procedure},
    )
    assert saved.status_code == 201, saved.text
    sign_in(page, key)
    page.get_by_role("link", name="Runs").click()
    page.get_by_label("What to verify").fill("PAN ABCPS1234K")
    page.get_by_label("Workflow").select_option("plan-first")
    page.get_by_role("button", name="Start run").click()
    plan = page.locator("#plan")
    expect(plan).to_contain_text("Run pan_verification on ABCPS1234K", timeout=30_000)
    expect(page.locator("#run-facts")).to_contain_text("requires_approval")
    photograph(page, "runs-approval")
    page.get_by_role("button", name="Approve plan").click()
    expect(page.locator("#run-facts")).to_contain_text("completed", timeout=30_000)
    expect(plan).to_be_hidden()
    expect(page.locator("#timeline")).to_contain_text("run.completed")


def test_leads_are_uploaded_and_enriched(
    page: Page, client: httpx.Client, key: str, fake: EchoLLM
) -> None:
    sign_in(page, key)
    page.get_by_role("link", name="Lead pipelines").click()
    templates = page.locator("#templates")
    templates.get_by_label("Name").fill("Pitch")
    templates.get_by_label("Model").fill("gpt-4o-mini")
    templates.get_by_label(re.compile("^Prompt")).fill("One line about {{company}}")
    page.get_by_role("button", name="Create AI template").click()
    expect(page.get_by_role("table", name="AI templates")).to_contain_text("Pitch")

    page.locator("#pipelines").get_by_label("Name").fill("Q4 outreach")
    page.get_by_role("button", name="Create pipeline").click()
    expect(page.locator("#pipeline-h")).to_have_text("Q4 outreach")
    leads = (
        "email,first_name,company,Tier\n"
        "ada@acme.example,Ada,Acme,gold\n"
        'grace@globex.example,Grace,"Globex, Inc.",silver\n'
        "ADA@acme.example,Ada,Acme,gold\n"
        "not-an-address,Bob,Nowhere,\n"
    )
    page.get_by_label(re.compile("CSV file")).set_input_files(
        {"name": "leads.csv", "mimeType": "text/csv", "buffer": leads.encode()}
    )
    page.get_by_role("button", name="Upload").click()
    expect(page.locator("#upload-summary")).to_have_text("4 rows: 2 created, 1 skipped, 1 failed.")
    page.get_by_role("combobox", name="Template").select_option(label="Pitch (gpt-4o-mini)")
    page.get_by_role("button", name="Start enrichment").click()
    expect(page.locator("#job-status")).to_contain_text("COMPLETED: 2 of 2 leads", timeout=30_000)
    table = page.get_by_role("table", name="Leads")
    expect(table.locator("thead")).to_contain_text("Pitch (ai)")
    expect(table).to_contain_text("Re: One line about Globex, Inc.")
    expect(table).to_contain_text("Re: One line about Acme")
    assert len(fake.requests()) == 2

    # A multi-AI template: a column per output field, each filled by one call per lead.
    profile = client.post(
        "/v1/columns/multi-ai-templates",
        headers={"Authorization": f"Bearer {key}"},
        json={
            "name": "Profile",
            "output_fields": ["city", "industry"],
            "prompt_template": "Profile {{company}}",
            "model": "gpt-4o-mini",
        },
    )
    assert profile.status_code == 201, profile.text
    page.reload()
    page.get_by_role("combobox", name="Template").select_option(
        label="Profile: city, industry (gpt-4o-mini)"
    )
    page.get_by_role("button", name="Start enrichment").click()
    expect(page.locator("#job-status")).to_contain_text("COMPLETED: 2 of 2 leads", timeout=30_000)
    expect(table.locator("thead")).to_contain_text("Profile: city (multi_ai)")
    expect(table.locator("thead")).to_contain_text("Profile: industry (multi_ai)")
    expect(table).to_contain_text("industry of Acme")
    with page.expect_download() as download:
        page.get_by_role("button", name="Export CSV").click()
    exported = Path(download.value.path()).read_text()
    assert "grace@globex.example" in exported
    assert "Re: One line about Acme" in exported
    photograph(page, "leads")


def test_entities_side_by_side_and_fused(page: Page, client: httpx.Client, key: str) -> None:
    headers = {"X-API-Key": key}
    schema = client.post(
        "/api/schema/saved",
        headers=headers,
        json={"name": "Companies", "entity_type": "company", "json_schema": SCHEMA},
    )
    assert schema.status_code == 201, schema.text
    started = client.post(
        "/api/single/enrich/stream",
        headers=headers,
        json={
            "entity_data": {"name": "Acme"},
            "schema_id": schema.json()["id"],
            "models": ["openai::gpt-4o-mini", "openai::gpt-4o"],
            "skip_classification": True,
        },
    )
    assert started.status_code == 200, started.text
    job = wait_for_job(client, headers, started.json()["job_id"])
    assert job["status"] == "completed", job

    sign_in(page, key)
    page.get_by_role("link", name="Entities").click()
    records = page.get_by_role("table", name="Records")
    # The two models' records and the fused one the job made of them.
    expect(records.locator("tbody tr")).to_have_count(3)
    records.locator("tbody tr", has_text="fusion").get_by_role("link").click()
    fused = page.get_by_role("table", name="Fused fields")
    expect(fused.locator("tbody tr").first).to_contain_text("yes")
    records.locator("tbody tr", has_text="enrichment").first.get_by_role("link").click()
    outputs = page.get_by_role("table", name="Each model's answer")
    expect(outputs.locator("thead th")).to_have_text(
        ["Field", re.compile("openai::gpt-4o"), re.compile("openai::gpt-4o")]
    )
    expect(outputs).to_contain_text("legal_name of Acme")
    expect(fused).to_be_hidden()
    page.get_by_role("button", name="Fuse these models' answers").click()
    expect(fused.locator("tbody tr").first).to_contain_text("yes")
    expect(fused).to_contain_text("headquarters of Acme")
    photograph(page, "entities")


def test_admin(page: Page, key: str) -> None:
    sign_in(page, key)
    page.get_by_role("link", name="Admin").click()
    expect(page.locator("#account-facts")).to_contain_text("acme")
    keys = page.locator("#api-keys")
    keys.get_by_label("Name").fill("ci bot")
    keys.get_by_label("Role").select_option("read")
    page.get_by_role("button", name="Create key").click()
    shown = page.locator("#new-key .secret")
    expect(shown).to_have_text(re.compile(r"^sk_live_\w{40}$"))
    made = shown.inner_text()
    key_table = page.get_by_role("table", name="API keys of this environment")
    expect(key_table).to_contain_text("ci bot")
    assert made not in key_table.inner_text()

    providers = page.locator("#provider-keys")
    providers.get_by_label("Provider", exact=True).fill("ANTHROPIC")
    providers.get_by_label("Key", exact=True).fill("sk-ant-secret-value-1234")
    page.get_by_role("button", name="Save provider key").click()
    listed = page.get_by_role("table", name="Provider keys")
    expect(listed).to_contain_text("your organisation")
    assert "secret-value-1234" not in listed.inner_text()

    page.locator("#webhooks").get_by_label("HTTPS URL").fill("http://127.0.0.1:9/hook")
    page.get_by_role("button", name="Add endpoint").click()
    expect(page.locator("#webhooks .error")).to_have_text("url: only https URLs are allowed")

    page.get_by_role("button", name="Edit kyc-verification").click()
    content = page.get_by_label(re.compile("^Markdown"))
    expect(content).to_have_value(re.compile("pan_verification"))
    content.fill("---\nchecks: [pan_verification]\n---\n# PAN only\n")
    page.get_by_role("button", name="Save workflow").click()
    expect(page.locator("#workflow-saved")).to_have_text(
        "Saved kyc-verification: checks pan_verification."
    )
    expect(page.get_by_role("table", name="Workflows")).to_contain_text("org")
    photograph(page, "admin")


def test_every_page_answers_and_unknown_ones_are_404(client: httpx.Client) -> None:
    assert client.get("/").headers["location"] == "/console"
    for name in PAGES:
        answer = client.get(f"/console/{name}")
        assert answer.status_code == 200
        assert "default-src 'self'" in answer.headers["content-security-policy"]
    assert client.get("/console/nope").status_code == 404
    assert (
        client.get("/console/static/console.js")
        .headers["content-type"]
        .startswith("text/javascript")
    )
    assert client.get("/console/static/../routes.py").status_code == 404


def wait_for_job(client: httpx.Client, headers: dict[str, str], job_id: str) -> Any:
    for _ in range(60):
        job = client.get(f"/api/llm/jobs/{job_id}?wait=5", headers=headers).json()
        if job["status"] in ("completed", "failed", "cancelled"):
            return job
    raise AssertionError(f"job {job_id} did not end")
