from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from fixtures.mail import DnsServer, Zone
from helpers.mailnet import RECORDS
from helpers.server import LiveServer
from helpers.tenants import Tenants, bearer
from openenrich.app import create_app
from openenrich.config import Settings

QUICKSTART = {
    "message": "Verify identity: Rahul Sharma, +91 98xxxxxx10, PAN ABCDE1234F",
    "workflow": "kyc-verification",
    "metadata": {"order_id": "7841"},
}
# Four checks: with the default threshold, a plan that needs approval.
DILIGENCE = {
    "message": "Diligence: GSTIN 27AAPFU0939F1ZV, PAN AAPFU0939F, EIN 04-2103594, "
    "IBAN DE89 3704 0044 0532 0130 00",
    "workflow": "business-due-diligence",
}


class Runs:
    def __init__(self, client: httpx.Client, key: str) -> None:
        self.client = client
        self.key = key
        self.headers = bearer(key)

    def create(self, body: dict[str, Any], **headers: str) -> httpx.Response:
        return self.client.post("/api/v1/runs", headers={**self.headers, **headers}, json=body)

    def get(self, run_id: str, wait: float = 0) -> dict[str, Any]:
        response = self.client.get(f"/api/v1/runs/{run_id}?wait={wait}", headers=self.headers)
        assert response.status_code == 200, response.text
        return response.json()

    def until(self, run_id: str, *statuses: str, timeout: float = 20) -> dict[str, Any]:
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.get(run_id, wait=5)
            if run["status"] in statuses:
                return run
            if run["status"] in ("completed", "failed", "cancelled", "interrupted"):
                break  # it will not change again
        raise AssertionError(f"run {run_id} never reached {statuses}: {run['status']}")


def serve(settings: Settings, **changes: Any) -> LiveServer:
    return LiveServer(create_app(settings.model_copy(update=changes)))


@pytest.fixture
def mail_dns() -> Iterator[DnsServer]:
    """The email verifier's DNS, on loopback: the zone of helpers/mailnet.py, where every
    other name does not exist. A run's email checks ask it, never the internet."""
    with DnsServer(Zone(RECORDS)) as dns:
        yield dns


@pytest.fixture
def fast_settings(settings: Settings, mail_dns: DnsServer) -> Settings:
    """Short heartbeats and polls, private URLs allowed (receivers run on loopback), DNS
    for email checks at `mail_dns` (the SMTP probe off, as by default)."""
    return settings.model_copy(
        update={
            "sse_heartbeat_seconds": 0.3,
            "job_poll_seconds": 0.2,
            "allow_private_urls": True,
            "webhook_retry_delays": [0.1, 0.1, 0.1],
            "webhook_timeout_seconds": 2.0,
            "email_dns_nameservers": ["127.0.0.1"],
            "email_dns_port": mail_dns.port,
            "email_dns_timeout_seconds": 5.0,
        }
    )


@pytest.fixture
def runs(fast_settings: Settings, tenants: Tenants) -> Iterator[Runs]:
    with serve(fast_settings) as live, httpx.Client(base_url=live.url, timeout=60) as client:
        yield Runs(client, tenants.key("acme"))
