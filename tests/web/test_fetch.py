"""Fetching and extracting web pages from a real site on loopback, through the SSRF guard."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from fixtures.site import StaticSite
from helpers.http import LocalServer
from openenrich.config import Settings
from openenrich.web.extract import extract
from openenrich.web.fetch import (
    BlockedURL,
    FetchConnectError,
    Fetcher,
    FetchHTTPError,
    FetchTimeout,
    Page,
    PageTooLarge,
    TooManyRedirects,
    UnsupportedContentType,
)


@pytest.fixture
def secret() -> Iterator[LocalServer]:
    """A private service the site tries to send us to: it must never be reached."""
    with LocalServer() as server:
        yield server


@pytest.fixture
def site(secret: LocalServer) -> Iterator[StaticSite]:
    with StaticSite(redirect_target=f"{secret.url}/internal") as server:
        yield server


def guarded(site: StaticSite, tmp_path: object, **changes: object) -> Settings:
    """The guard on, with only the site's own host:port let through (as an operator would
    allow one internal service). The timeout is generous, so that a busy machine never
    turns another failure into a timeout; the timeout's own test shortens it."""
    return Settings(
        data_dir=f"{tmp_path}/data",
        allowed_private_hosts=[f"127.0.0.1:{site.port}"],
        fetch_max_bytes=100_000,
        **({"fetch_timeout_seconds": 10.0} | changes),
    )


def fetch(settings: Settings, url: str) -> Page:
    async def main() -> Page:
        fetcher = Fetcher(settings)
        try:
            return await fetcher.fetch(url)
        finally:
            await fetcher.close()

    return asyncio.run(main())


def test_a_page_and_its_redirects(site: StaticSite, tmp_path: object) -> None:
    page = fetch(guarded(site, tmp_path), f"{site.url}/redirect")
    assert page.url == f"{site.url}/article"
    assert page.redirects == (f"{site.url}/redirect",)
    assert page.status == 200
    assert page.content_type == "text/html"
    assert "Acme Mover" in page.text
    assert site.received[0].headers["user-agent"].startswith("OpenEnrich/")


def test_a_redirect_to_a_private_address_is_refused(
    site: StaticSite, secret: LocalServer, tmp_path: object
) -> None:
    with pytest.raises(BlockedURL, match="non-public address") as caught:
        fetch(guarded(site, tmp_path), f"{site.url}/redirect-elsewhere")
    assert caught.value.status_code == 400
    assert [r.path for r in site.received] == ["/redirect-elsewhere"]
    assert secret.received == []  # refused before connecting


def test_private_addresses_when_allowed(
    site: StaticSite, secret: LocalServer, tmp_path: object
) -> None:
    settings = guarded(site, tmp_path).model_copy(update={"allow_private_urls": True})
    page = fetch(settings, f"{site.url}/redirect-elsewhere")
    assert page.url == f"{secret.url}/internal"
    assert [r.path for r in secret.received] == ["/internal"]


def test_the_guard_refuses_private_urls_by_default(site: StaticSite, tmp_path: object) -> None:
    with pytest.raises(BlockedURL, match="non-public address"):
        fetch(Settings(data_dir=f"{tmp_path}/data"), f"{site.url}/article")
    with pytest.raises(BlockedURL, match="only http"):
        fetch(guarded(site, tmp_path), "ftp://example.com/file")
    assert site.received == []


@pytest.mark.parametrize(
    ("path", "error", "message"),
    [
        ("/missing", FetchHTTPError, "answered 404"),
        ("/pdf", UnsupportedContentType, "application/pdf"),
        ("/big", PageTooLarge, "larger than 100000 bytes"),
        ("/loop", TooManyRedirects, "redirected too many times"),
        ("/slow", FetchTimeout, "did not answer within 1 s"),  # the site takes 3 s
    ],
)
def test_each_failure_has_its_error(
    site: StaticSite, tmp_path: object, path: str, error: type[Exception], message: str
) -> None:
    timeout = {"fetch_timeout_seconds": 1.0} if error is FetchTimeout else {}
    with pytest.raises(error, match=message):
        fetch(guarded(site, tmp_path, **timeout), f"{site.url}{path}")


def test_a_refused_connection(tmp_path: object) -> None:
    settings = Settings(data_dir=f"{tmp_path}/data", allow_private_urls=True)
    with pytest.raises(FetchConnectError, match="could not be reached"):
        fetch(settings, "http://127.0.0.1:9/")


def test_the_declared_charset_is_used(site: StaticSite, tmp_path: object) -> None:
    page = fetch(guarded(site, tmp_path), f"{site.url}/latin1")
    assert "Café Müller, Zürich" in page.text


def test_main_content_as_markdown(site: StaticSite, tmp_path: object) -> None:
    page = fetch(guarded(site, tmp_path), f"{site.url}/article")
    content = extract(page.text, page.url)
    assert content.method == "trafilatura"
    assert content.title == "Acme Robotics — About us"
    assert content.description == "Acme Robotics builds warehouse robots in Boston."
    assert "founded in 2014 in Boston" in content.markdown
    assert "## Our tagline" in content.markdown or "Our tagline" in content.markdown
    assert "tracking" not in content.markdown
    assert "Careers" not in content.markdown  # navigation is not main content
    assert content.links[:3] == [f"{site.url}/", f"{site.url}/pricing", f"{site.url}/careers"]
    assert f"{site.url}/blog/fleet" in content.links
    assert "https://example.org/press" in content.links
    assert not any(link.startswith("mailto:") or "#" in link for link in content.links)


def test_short_pages_fall_back_to_their_text() -> None:
    """trafilatura drops headers and footers as boilerplate; on a page that is nothing
    else, the visible text (blocks on their own lines, no scripts) is better than nothing."""
    html = """<html><head><title>Tiny</title></head><body>
    <header><h1>Tiny Corp</h1><p>We make tiny things.</p></header>
    <footer>Contact us <a href="/shop">at the shop</a>.</footer>
    <script>document.write("no")</script></body></html>"""
    content = extract(html, "https://tiny.example/")
    assert content.method == "text"
    assert content.markdown == "Tiny Corp\nWe make tiny things.\n\nContact us at the shop."
    assert content.title == "Tiny"
    assert content.links == ["https://tiny.example/shop"]


def test_nothing_to_extract() -> None:
    content = extract("", None)
    assert (content.markdown, content.title, content.links) == ("", None, [])
