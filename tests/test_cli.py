"""The `openenrich` command, as an operator uses it."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from helpers.processes import ServeProcess
from helpers.tenants import bearer
from openenrich import __version__
from openenrich.cli import app as cli
from openenrich.config import Settings
from openenrich.db import migrate

KEY = re.compile(r"sk_(live|test)_[A-Za-z0-9]{40}")


def openenrich(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "openenrich", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.subprocess
def test_first_start_makes_a_default_admin_key_once(tmp_path: Path) -> None:
    data = tmp_path / "openenrich-data"
    with ServeProcess(data) as server:
        keys = KEY.findall(server.text)
        bootstrap = KEY.search(server.text)
        assert bootstrap is not None, server.text
        assert len(keys) == 1, server.text
        admin = bootstrap.group(0)
        assert (data / "openenrich.db").exists()
        assert httpx.get(f"{server.url}/docs").status_code == 200
        me = httpx.get(f"{server.url}/api/auth/me", headers=bearer(admin)).json()
        assert (me["organization"], me["role"], me["environment"]) == ("default", "admin", "live")

        # A key made by `keys create` against the running server's data folder works
        # with both headers; the plaintext is the last line printed.
        created = openenrich(
            "keys", "create", "--data-dir", str(data), "--org", "acme", "--name", "ci"
        )
        assert created.returncode == 0, created.stderr
        key = created.stdout.strip().splitlines()[-1]
        assert KEY.fullmatch(key)
        for headers in (bearer(key), {"X-API-Key": key}):
            response = httpx.get(f"{server.url}/api/auth/me", headers=headers)
            assert response.status_code == 200
            assert response.json()["organization"] == "acme"
        server.stop()
        # Keys are never logged: the server printed only the bootstrap key, once.
        assert key not in server.text
        assert server.text.count(admin) == 1

    with ServeProcess(data) as again:
        assert KEY.search(again.text) is None, "a second start must not print a new key"
        assert httpx.get(f"{again.url}/api/auth/me", headers=bearer(admin)).status_code == 200


@pytest.mark.subprocess
def test_serve_takes_its_settings_from_the_environment(tmp_path: Path) -> None:
    server = ServeProcess(tmp_path / "unused")
    data = tmp_path / "from-env"
    server.args = [sys.executable, "-m", "openenrich", "serve"]  # no flags at all
    server.env.update(OPENENRICH_PORT=str(server.port), OPENENRICH_DATA_DIR=str(data))
    with server:
        assert httpx.get(f"{server.url}/health").json()["status"] == "ok"
    assert (data / "openenrich.db").exists()
    assert not (tmp_path / "unused").exists()


def invoke(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("┃│").split("┃" if "┃" in line else "│")]


def test_keys_create_list_revoke(settings: Settings) -> None:
    db = ["--database-url", str(settings.database_url)]
    output = invoke(
        "keys", "create", "--org", "acme", "--role", "read", "--test", "--name", "ro", *db
    )
    key = output.strip().splitlines()[-1]
    assert key.startswith("sk_test_")

    def row(prefix: str) -> dict[str, str]:
        lines = invoke("keys", "list", *db).splitlines()
        header = next(line for line in lines if "prefix" in line)
        found = next(line for line in lines if prefix in line)
        return dict(zip(cells(header), cells(found), strict=True))

    listed = row(key[:16])
    assert listed["org"] == "acme"
    assert (listed["name"], listed["role"], listed["environment"]) == ("ro", "read", "test")
    assert (listed["last used"], listed["revoked"]) == ("-", "-")
    assert key[16:] not in invoke("keys", "list", *db)

    assert invoke("keys", "revoke", key[:16], *db).strip() == f"revoked {key[:16]}"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", row(key[:16])["revoked"])

    missing = CliRunner().invoke(cli, ["keys", "revoke", "sk_live_nothere0", *db])
    assert missing.exit_code == 1
    assert "not found" in missing.output


def test_plans_are_seeded_and_editable(settings: Settings) -> None:
    db = ["--database-url", str(settings.database_url)]
    plans = invoke("plans", "list", *db)
    for name in (
        "unlimited",
        "streams-starter",
        "streams-pro",
        "streams-scale",
        "streams-enterprise",
        "leads-free",
        "leads-starter",
        "leads-pro",
    ):
        assert name in plans

    invoke("keys", "create", "--org", "acme", *db)
    assert "unlimited" in invoke("orgs", "list", *db)
    invoke("plans", "set", "streams-starter", "--rps", "75", "--events-per-month", "unlimited", *db)
    starter = next(
        line for line in invoke("plans", "list", *db).splitlines() if "streams-starter" in line
    )
    assert "75.0" in starter
    assert "10000000" not in starter

    assert "now on plan 'streams-starter'" in invoke(
        "orgs", "set-plan", "acme", "streams-starter", *db
    )
    unknown = CliRunner().invoke(cli, ["orgs", "set-plan", "acme", "gold", *db])
    assert unknown.exit_code == 1
    assert "Plan 'gold' not found" in unknown.output
    bad = CliRunner().invoke(cli, ["plans", "set", "x", "--rps", "fast", *db])
    assert bad.exit_code == 2


def test_version_and_db_commands(settings: Settings) -> None:
    assert invoke("--version").strip() == f"openenrich {__version__}"
    db = ["--database-url", str(settings.database_url)]
    head = migrate.head_revision()
    assert invoke("db", "upgrade", *db).strip() == f"database at revision {head}"
    current = invoke("db", "current", *db)
    assert f"current: {head}" in current
    assert f"head:    {head}" in current


@pytest.mark.subprocess
def test_two_servers_starting_together_on_an_empty_database(
    tmp_path: Path, empty_database_url: str
) -> None:
    """Scale-out: both migrate and come up; the database is bootstrapped exactly once."""
    first = ServeProcess(tmp_path / "a", database_url=empty_database_url)
    second = ServeProcess(tmp_path / "b", database_url=empty_database_url)
    # Start both before waiting for either.
    first_process = subprocess.Popen(first.args, env=first.env, stdout=subprocess.PIPE, text=True)
    second_process = subprocess.Popen(
        second.args, env=second.env, stdout=subprocess.PIPE, text=True
    )
    try:
        for server in (first, second):
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{server.url}/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "a server did not come up"
                time.sleep(0.05)
    finally:
        for process in (first_process, second_process):
            process.terminate()
    outputs = [process.communicate(timeout=15)[0] for process in (first_process, second_process)]
    assert sum(len(KEY.findall(output)) for output in outputs) == 1, "\n=====\n".join(outputs)
