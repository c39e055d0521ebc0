"""A Firecrawl-compatible scrape/extract API, used instead of our own fetch + LLM when a
tenant stores a `FIRECRAWL` key (base URL from the key, the setting, or Firecrawl's own).

    POST {base}/v1/scrape {"url", "formats": ["markdown"]}                  → data.markdown
    POST {base}/v1/scrape {"url", "formats": ["json"], "jsonOptions": {prompt, schema}}
                                                                             → data.json
"""

from __future__ import annotations

from typing import Any

import httpx

from openenrich.web.fetch import FetchConnectError, FetchError, FetchHTTPError, FetchTimeout

DEFAULT_BASE_URL = "https://api.firecrawl.dev"


class FirecrawlClient:
    def __init__(self, http: httpx.AsyncClient, api_key: str, base_url: str | None) -> None:
        self._http = http
        self._api_key = api_key
        self._base = (base_url or DEFAULT_BASE_URL).rstrip("/")

    async def close(self) -> None:
        await self._http.aclose()

    async def scrape(self, url: str) -> dict[str, Any]:
        return await self._scrape({"url": url, "formats": ["markdown"]})

    async def extract(self, url: str, prompt: str, schema: dict[str, Any]) -> Any:
        data = await self._scrape(
            {"url": url, "formats": ["json"], "jsonOptions": {"prompt": prompt, "schema": schema}}
        )
        return data.get("json")

    async def _scrape(self, body: dict[str, Any]) -> dict[str, Any]:
        try:
            response = await self._http.post(
                f"{self._base}/v1/scrape",
                json=body,
                headers={"authorization": f"Bearer {self._api_key}"},
            )
        except httpx.TimeoutException:
            raise FetchTimeout("Firecrawl did not answer in time") from None
        except httpx.TransportError as error:
            raise FetchConnectError(f"Firecrawl could not be reached: {error}") from None
        if response.status_code >= 400:
            raise FetchHTTPError(
                f"Firecrawl answered {response.status_code}",
                extra={"status": response.status_code},
            )
        try:
            payload = response.json()
        except ValueError:
            raise FetchError("Firecrawl's answer is not JSON") from None
        if not isinstance(payload, dict) or not payload.get("success", True):
            raise FetchError(f"Firecrawl could not scrape {body['url']}: {payload}")
        data = payload.get("data")
        return data if isinstance(data, dict) else {}
