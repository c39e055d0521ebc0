"""docs/client.md's examples, run in order against a real server."""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers.server import LiveServer
from helpers.tenants import Tenants
from leads.conftest import EchoLLM
from openenrich.app import create_app
from openenrich.config import Settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "client.md"


def examples() -> list[str]:
    return re.findall(r"```python\n(.+?)```", DOC.read_text(), re.DOTALL)


@pytest.fixture
def server(settings: Settings) -> Iterator[LiveServer]:
    """The LLM providers are the fake; the webhook example's receiver is on this host."""
    with EchoLLM() as fake:
        changed = settings.model_copy(
            update={
                "provider_openai_api_key": "sk-server-openai",
                "provider_openai_base_url": f"{fake.url}/v1",
                "job_poll_seconds": 0.2,
                "sse_heartbeat_seconds": 0.3,
                "allow_private_urls": True,
            }
        )
        with LiveServer(create_app(changed)) as live:
            yield live


def test_the_docs_have_examples_for_every_part() -> None:
    text = "\n".join(examples())
    for used in (
        "streams.ingest",
        "streams.query",
        "runs.events",
        "AsyncClient",
        "verify_signature",
        "leads.upload",
        "leads.start_enrichment",
        "entities.events",
        "entities.record",
        "webhooks.create",
    ):
        assert used in text


def test_every_example_runs(
    server: LiveServer, tenants: Tenants, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENENRICH_URL", server.url)
    monkeypatch.setenv("OPENENRICH_API_KEY", tenants.key("acme"))
    namespace: dict[str, object] = {"__name__": "docs"}  # one reader, top to bottom
    for number, code in enumerate(examples(), start=1):
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(code, f"{DOC.name} example {number}", "exec"), namespace)  # noqa: S102 (our docs)
        assert printed.getvalue().strip(), f"example {number} printed nothing"
