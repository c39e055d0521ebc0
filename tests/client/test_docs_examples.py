"""docs/client.md's examples, run in order against a real server."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

from helpers.server import LiveServer
from helpers.tenants import Tenants

DOC = Path(__file__).resolve().parents[2] / "docs" / "client.md"


def examples() -> list[str]:
    return re.findall(r"```python\n(.+?)```", DOC.read_text(), re.DOTALL)


def test_the_docs_have_examples_for_every_part() -> None:
    text = "\n".join(examples())
    for used in (
        "streams.ingest",
        "streams.query",
        "runs.events",
        "AsyncClient",
        "verify_signature",
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
