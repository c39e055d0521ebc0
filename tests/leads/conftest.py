"""The lead-pipelines surface over HTTP: a tenant's calls, as the reference's curl examples
make them."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from helpers.server import LiveServer
from helpers.tenants import Tenants, bearer
from openenrich.app import create_app
from openenrich.config import Settings


class Leads:
    """One key's calls on the surface; each helper asserts the status it expects."""

    def __init__(self, client: httpx.Client, key: str) -> None:
        self.client = client
        self.key = key
        self.headers = bearer(key)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return self.client.request(method, path, headers=headers, **kwargs)

    def create_pipeline(self, name: str = "Q3 outbound", **fields: Any) -> dict[str, Any]:
        answer = self.request("POST", "/v1/pipelines", json={"pipeline_name": name, **fields})
        assert answer.status_code == 201, answer.text
        body: dict[str, Any] = answer.json()
        return body

    def pipeline(self, pipeline_id: str) -> dict[str, Any]:
        answer = self.request("GET", f"/v1/pipelines/{pipeline_id}")
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    def upload_raw(self, pipeline_id: str, rows: Any) -> httpx.Response:
        return self.request(
            "POST",
            f"/v1/pipelines/{pipeline_id}/leads",
            content=json.dumps(rows).encode(),
            headers={"Content-Type": "application/json"},
        )

    def upload(self, pipeline_id: str, rows: Any) -> dict[str, Any]:
        answer = self.upload_raw(pipeline_id, rows)
        assert answer.status_code == 202, answer.text
        body: dict[str, Any] = answer.json()
        return body

    def page(self, pipeline_id: str, **params: Any) -> dict[str, Any]:
        answer = self.request("GET", f"/v1/pipelines/{pipeline_id}/leads", params=params)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body


def addresses(
    count: int, start: int = 0, domain: str = "stresstest.example"
) -> list[dict[str, str]]:
    """The cookbook's rows: `{"email": "user<n>@stresstest.example"}`."""
    return [{"email": f"user{n}@{domain}"} for n in range(start, start + count)]


def serve(settings: Settings, **changes: Any) -> LiveServer:
    return LiveServer(create_app(settings.model_copy(update=changes)))


@pytest.fixture
def leads(client: httpx.Client, tenants: Tenants) -> Leads:
    return Leads(client, tenants.key("acme"))


@pytest.fixture
def other(client: httpx.Client, tenants: Tenants) -> Leads:
    """Another organisation on the same server."""
    return Leads(client, tenants.key("globex"))


@pytest.fixture
def pipeline(leads: Leads) -> str:
    pipeline_id: str = leads.create_pipeline()["pipeline_id"]
    return pipeline_id
