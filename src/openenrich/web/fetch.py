"""`Fetcher.fetch(url)`: one web page, safely.

Every hop of a redirect chain passes the SSRF guard (`web.client`), the body is read up to
`fetch_max_bytes` and no further, the whole fetch has `fetch_timeout_seconds`, and only
pages we can extract from (HTML, XHTML, plain text) are accepted. Each failure has its
own error, so a lead or a run can say exactly why a page was not read:

    FetchError                    502 fetch_failed
    ├── BlockedURL                400 url_not_allowed       (SSRF guard, bad scheme/URL)
    ├── FetchTimeout              504 fetch_timeout
    ├── FetchConnectError         502 fetch_connect_failed  (DNS, refused, TLS)
    ├── FetchHTTPError            502 fetch_http_status     (4xx/5xx; `status` in the body)
    ├── TooManyRedirects          502 fetch_too_many_redirects
    ├── PageTooLarge              502 fetch_too_large
    └── UnsupportedContentType    502 unsupported_content_type
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from dataclasses import dataclass

import httpx

from openenrich.config import Settings
from openenrich.errors import OpenEnrichError
from openenrich.web.client import guarded_client
from openenrich.web.guard import UnsafeURL

PAGE_TYPES = ("text/html", "application/xhtml+xml", "text/plain")


class FetchError(OpenEnrichError):
    status_code = 502
    code = "fetch_failed"


class BlockedURL(FetchError):
    status_code = 400
    code = "url_not_allowed"


class FetchTimeout(FetchError):
    status_code = 504
    code = "fetch_timeout"


class FetchConnectError(FetchError):
    code = "fetch_connect_failed"


class FetchHTTPError(FetchError):
    code = "fetch_http_status"


class TooManyRedirects(FetchError):
    code = "fetch_too_many_redirects"


class PageTooLarge(FetchError):
    code = "fetch_too_large"


class UnsupportedContentType(FetchError):
    code = "unsupported_content_type"


@dataclass(frozen=True, slots=True)
class Page:
    url: str  # where the page was found, after redirects
    status: int
    content_type: str
    body: bytes
    encoding: str
    redirects: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        return self.body.decode(self.encoding, errors="replace")


class Fetcher:
    def __init__(self, settings: Settings) -> None:
        self.max_bytes = settings.fetch_max_bytes
        self.timeout = settings.fetch_timeout_seconds
        self._client = guarded_client(
            allow_private=settings.allow_private_urls,
            allowed_hosts=settings.allowed_private_hosts,
            https_only=False,
            follow_redirects=True,
            timeout=settings.fetch_timeout_seconds,
            headers={
                "user-agent": settings.fetch_user_agent,
                "accept": "text/html,application/xhtml+xml,text/plain;q=0.9,*/*;q=0.1",
            },
        )
        self._client.max_redirects = settings.fetch_max_redirects

    async def close(self) -> None:
        await self._client.aclose()

    async def fetch(self, url: str, *, content_types: Collection[str] = PAGE_TYPES) -> Page:
        try:
            async with asyncio.timeout(self.timeout):
                return await self._fetch(url, content_types)
        except TimeoutError:
            raise FetchTimeout(f"{url} did not answer within {self.timeout:g} s") from None
        except UnsafeURL as error:
            raise BlockedURL(f"{url} may not be fetched: {error}") from None
        except httpx.TooManyRedirects:
            raise TooManyRedirects(f"{url} redirected too many times") from None
        except httpx.TimeoutException:
            raise FetchTimeout(f"{url} did not answer within {self.timeout:g} s") from None
        except httpx.InvalidURL as error:
            raise BlockedURL(f"{url} is not a valid URL: {error}") from None
        except httpx.UnsupportedProtocol:
            raise BlockedURL(f"{url}: only http(s) URLs can be fetched") from None
        except httpx.TransportError as error:
            raise FetchConnectError(f"{url} could not be reached: {error}") from None

    async def _fetch(self, url: str, content_types: Collection[str]) -> Page:
        async with self._client.stream("GET", url) as response:
            redirects = tuple(str(r.url) for r in response.history)
            if response.status_code >= 400:
                raise FetchHTTPError(
                    f"{url} answered {response.status_code}",
                    extra={"status": response.status_code},
                )
            content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
            if content_type and content_type not in content_types:
                raise UnsupportedContentType(f"{url} is {content_type}, not a web page")
            declared = response.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > self.max_bytes:
                raise PageTooLarge(f"{url} is larger than {self.max_bytes} bytes")
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > self.max_bytes:
                    raise PageTooLarge(f"{url} is larger than {self.max_bytes} bytes")
                chunks.append(chunk)
            return Page(
                url=str(response.url),
                status=response.status_code,
                content_type=content_type or "text/html",
                body=b"".join(chunks),
                encoding=response.charset_encoding or "utf-8",
                redirects=redirects,
            )
