"""The access log: one line per request, with the key's prefix and never the key; JSON
lines when OPENENRICH_LOG_FORMAT=json."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import httpx
import pytest

from helpers.processes import ServeProcess
from helpers.server import LiveServer
from helpers.tenants import Tenants, bearer
from openenrich.app import create_app
from openenrich.config import Settings
from openenrich.logs import JSONFormatter


def test_each_request_is_one_line_naming_the_key_by_its_prefix(
    settings: Settings, tenants: Tenants, caplog: pytest.LogCaptureFixture
) -> None:
    key = tenants.key("acme")
    with (
        LiveServer(create_app(settings.model_copy(update={"access_log": True}))) as server,
        caplog.at_level(logging.INFO, logger="openenrich.access"),
    ):
        httpx.get(f"{server.url}/streams?secret=abc", headers=bearer(key))
        httpx.get(f"{server.url}/streams")
    records = [r for r in caplog.records if r.name == "openenrich.access"]
    lines = [vars(r) for r in records]
    assert [(line["method"], line["path"], line["status"]) for line in lines] == [
        ("GET", "/streams", 200),
        ("GET", "/streams", 401),
    ]
    assert lines[0]["key_prefix"]
    assert key.startswith(lines[0]["key_prefix"])
    assert lines[1]["key_prefix"] is None
    assert all(line["duration_ms"] >= 0 for line in lines)
    for record in records:
        assert key not in record.getMessage()
        assert "secret" not in record.getMessage()


def test_json_lines_carry_the_fields() -> None:
    record = logging.makeLogRecord(
        {"name": "openenrich.access", "msg": "GET / 200", "levelno": 20, "levelname": "INFO"}
    )
    record.status = 200
    line = json.loads(JSONFormatter().format(record))
    assert line["message"] == "GET / 200"
    assert line["status"] == 200
    assert line["level"] == "info"


@pytest.mark.subprocess
def test_serve_logs_json_access_lines(tmp_path: Path, settings: Settings) -> None:
    env = {"OPENENRICH_ACCESS_LOG": "true", "OPENENRICH_LOG_FORMAT": "json"}
    with ServeProcess(tmp_path / "serve", database_url=str(settings.database_url), env=env) as s:
        httpx.get(f"{s.url}/streams", headers={"Authorization": "Bearer sk_live_" + "x" * 40})
        deadline = time.monotonic() + 5
        while '"/streams"' not in s.text and time.monotonic() < deadline:
            time.sleep(0.05)
        output = s.text
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    access = [line for line in lines if line["logger"] == "openenrich.access"]
    assert any(line["path"] == "/streams" and line["status"] == 401 for line in access)
    assert "x" * 40 not in output
    assert all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
