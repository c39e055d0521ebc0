"""What the destination tests share: settings that reach loopback receivers and retry fast,
a way to hand batches to the outbox as the lake engine's flush will, and receivers for
syslog (the HTTP ones are helpers.http.LocalServer)."""

from __future__ import annotations

import datetime as dt
import json
import re
import socketserver
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pyarrow as pa
from sqlalchemy.ext.asyncio import AsyncSession

from helpers.tenants import Tenants, bearer
from openenrich.config import Settings
from openenrich.jobs.notify import JobHub
from openenrich.lake.storage import LakeStorage
from openenrich.streams import outbox
from openenrich.tenancy import service as tenancy


def delivery_settings(settings: Settings, **changes: Any) -> Settings:
    return settings.model_copy(
        update={
            "allow_private_urls": True,  # the receivers are on 127.0.0.1
            "job_poll_seconds": 0.1,
            "destination_retry_base_seconds": 0.05,
            "destination_retry_max_seconds": 0.2,
            "destination_timeout_seconds": 5.0,
            **changes,
        }
    )


def org_id(tenants: Tenants, name: str = "acme") -> str:
    async def work(session: AsyncSession) -> str:
        return (await tenancy.ensure_organization(session, name)).id

    return tenants.run(work)


def events(first: int, count: int, **extra: Any) -> pa.Table:
    """Rows as the flush hands them over: `_event_id`, `_ingested_at`, the event's fields."""
    moment = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)
    return pa.table(
        {
            "_event_id": [f"ev-{n}" for n in range(first, first + count)],
            "_ingested_at": pa.array(
                [moment + dt.timedelta(seconds=n) for n in range(first, first + count)],
                pa.timestamp("us", tz="UTC"),
            ),
            "n": list(range(first, first + count)),
            "level": ["error" if n % 2 else "info" for n in range(first, first + count)],
            **{key: [value] * count for key, value in extra.items()},
        }
    )


def push(
    settings: Settings,
    tenants: Tenants,
    destination_id: str,
    stream_id: str,
    name: str,
    rows: pa.Table,
    *,
    org: str = "acme",
) -> outbox.StagedBatch:
    """Stage and enqueue one batch, the two calls the flush makes."""
    staged = outbox.stage(
        LakeStorage(settings), org_id(tenants, org), "live", destination_id, stream_id, name, rows
    )

    async def work(session: AsyncSession) -> None:
        await outbox.enqueue(session, JobHub(), [staged])

    tenants.run(work)
    return staged


def create(client: httpx.Client, key: str, **body: Any) -> dict[str, Any]:
    response = client.post("/destinations", headers=bearer(key), json=body)
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


def wait_until(check: Callable[[], bool], timeout: float = 20.0, what: str = "it") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise TimeoutError(f"{what} did not happen within {timeout} s")


def state(client: httpx.Client, key: str, destination_id: str) -> dict[str, Any]:
    response = client.get(f"/destinations/{destination_id}", headers=bearer(key))
    assert response.status_code == 200, response.text
    delivery: dict[str, Any] = response.json()["delivery"]
    return delivery


def delivered(client: httpx.Client, key: str, destination_id: str, batches: int) -> None:
    def done() -> bool:
        now = state(client, key, destination_id)
        return bool(now["delivered_batches"] >= batches and now["pending_batches"] == 0)

    wait_until(done, what=f"delivering {batches} batch(es) to {destination_id}")


# -- syslog --------------------------------------------------------------------------------

RFC5424 = re.compile(
    rb"<(?P<pri>\d{1,3})>1 (?P<time>\S+) (?P<host>\S+) (?P<app>\S+) (?P<procid>\S+) "
    rb"(?P<msgid>\S+) (?P<sd>-|\[.*?\]) (?P<msg>.*)",
    re.S,
)


def parse_syslog(message: bytes) -> dict[str, Any]:
    match = RFC5424.fullmatch(message)
    assert match is not None, message
    parsed: dict[str, Any] = {k: v.decode() for k, v in match.groupdict().items() if k != "msg"}
    parsed["event"] = json.loads(match["msg"])
    return parsed


class SyslogListener:
    """A TCP (octet-counting framing, RFC 6587) or UDP syslog receiver on loopback."""

    def __init__(self, protocol: str) -> None:
        self.messages: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        owner = self

        class Tcp(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                while True:
                    length = b""
                    while not length.endswith(b" "):
                        byte = self.rfile.read(1)
                        if not byte:
                            return
                        assert byte.isdigit() or byte == b" ", f"bad frame: {length + byte!r}"
                        length += byte
                    owner._add(self.rfile.read(int(length)))

        class Udp(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                owner._add(self.request[0])

        server_type: Any = (
            socketserver.ThreadingTCPServer
            if protocol == "tcp"
            else socketserver.ThreadingUDPServer
        )
        self._server = server_type(("127.0.0.1", 0), Tcp if protocol == "tcp" else Udp)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _add(self, message: bytes) -> None:
        parsed = parse_syslog(message)
        with self._lock:
            self.messages.append(parsed)

    def __enter__(self) -> SyslogListener:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
