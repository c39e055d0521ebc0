"""The docs keep up with the code: every setting, every route, the README's commands."""

from __future__ import annotations

import json
import re
from pathlib import Path

from openenrich.app import create_app
from openenrich.config import Settings
from openenrich.verify.report import REPORT_SCHEMA
from openenrich.verify.tools import REGISTRY

ROOT = Path(__file__).resolve().parents[1]


def test_every_setting_is_documented() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    missing = [
        f"OPENENRICH_{name.upper()}"
        for name in Settings.model_fields
        if f"`OPENENRICH_{name.upper()}`" not in text
    ]
    assert missing == []


def test_every_route_is_documented() -> None:
    text = (ROOT / "docs" / "api.md").read_text()
    documented = set(re.findall(r"^\| (GET|POST|PUT|PATCH|DELETE) \| `([^`]+)`", text, re.M))
    paths = create_app(Settings()).openapi()["paths"]
    routes = {(method.upper(), path) for path, item in paths.items() for method in item}
    assert routes - documented == set()
    assert documented - routes <= {("GET", "/docs"), ("GET", "/openapi.json")}


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    quickstart = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```sh\n(.+?)\n```", quickstart)
    assert len(commands) == 2, "the Quickstart has exactly two set-up commands"
    serve, test = commands
    assert serve.endswith("openenrich serve")
    assert "'.[test]'" in test
    assert "pytest" in test
    assert test in (ROOT / ".ci" / "run").read_text()


def test_the_verification_tools_and_report_schema_are_documented() -> None:
    text = (ROOT / "docs" / "verification.md").read_text()
    rows = set(re.findall(r"^\| `([a-z_]+)` \| `([a-z_]+)` \| ([0-9.]+) \|", text, re.M))
    assert rows == {(t.name, t.kind, str(t.price)) for t in REGISTRY.values()}
    block = text.split("```json\n", 1)[1].split("\n```", 1)[0]
    assert json.loads(block) == REPORT_SCHEMA
