"""The guarded HTTP client: what the SSRF guard refuses, it refuses at connect time, for
every request and every redirect hop."""

from __future__ import annotations

import asyncio

import pytest

from helpers.http import LocalServer, Reply
from openenrich.web.client import guarded_client
from openenrich.web.guard import UnsafeURL


def fetch(url: str, *, allow_private: bool, follow_redirects: bool = False) -> int:
    async def main() -> int:
        async with guarded_client(
            allow_private=allow_private, follow_redirects=follow_redirects, timeout=5
        ) as client:
            return (await client.get(url)).status_code

    return asyncio.run(main())


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://example.com/", "only https URLs are allowed"),
        ("https://localhost:1/", "resolves to a non-public address"),
        ("https://127.0.0.1:1/", "resolves to a non-public address"),
        ("https://[::1]:1/", "resolves to a non-public address"),
        ("https://169.254.169.254/latest/meta-data", "resolves to a non-public address"),
        ("https://10.1.2.3/", "resolves to a non-public address"),
        ("https://100.64.0.1/", "resolves to a non-public address"),
        ("https://name.invalid/", "does not resolve"),
    ],
)
def test_refused_before_any_byte_is_sent(url: str, why: str) -> None:
    with pytest.raises(UnsafeURL, match=why):
        fetch(url, allow_private=False)


def test_private_addresses_when_allowed() -> None:
    with LocalServer(lambda n, r: Reply(body=b"hello")) as site:

        async def main() -> list[str]:
            async with guarded_client(allow_private=True) as client:
                return [(await client.get(f"{site.url}/{n}")).text for n in range(3)]

        assert asyncio.run(main()) == ["hello"] * 3
        assert [r.path for r in site.received] == ["/0", "/1", "/2"]


def test_every_redirect_hop_is_checked() -> None:
    """A plain-http hop is refused even when the first URL was acceptable: the check runs
    per request, not once per call."""
    with LocalServer(
        lambda n, r: Reply(status=302, headers={"location": "ftp://127.0.0.1/secret"})
    ) as site:
        with pytest.raises(UnsafeURL, match="only http"):
            fetch(f"{site.url}/start", allow_private=True, follow_redirects=True)
        assert [r.path for r in site.received] == ["/start"]
