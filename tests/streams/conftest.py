from __future__ import annotations

from typing import Any

import httpx
import pytest

from helpers.tenants import Tenants, bearer


class Lake:
    """A tenant's view of the streams API, with the reference's calls as methods."""

    def __init__(self, client: httpx.Client, key: str) -> None:
        self.client = client
        self.key = key
        self.headers = bearer(key)

    def create(self, stream_id: str, **body: Any) -> httpx.Response:
        return self.client.post(
            "/streams", headers=self.headers, json={"stream_id": stream_id, **body}
        )

    def ingest(self, stream_id: str, data: Any) -> httpx.Response:
        return self.client.post(
            "/ingest", headers=self.headers, json={"stream_id": stream_id, "data": data}
        )

    def flush(self, stream_id: str) -> dict[str, Any]:
        response = self.client.post(f"/streams/{stream_id}/flush", headers=self.headers)
        assert response.status_code == 200, response.text
        return response.json()

    def query(self, sql: str) -> httpx.Response:
        return self.client.post("/query", headers=self.headers, json={"sql": sql})

    def rows(self, sql: str) -> list[list[Any]]:
        response = self.query(sql)
        assert response.status_code == 200, response.text
        return response.json()["rows"]


@pytest.fixture
def lake(client: httpx.Client, tenants: Tenants) -> Lake:
    return Lake(client, tenants.key("acme"))
