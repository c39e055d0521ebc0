"""/docs and /redoc work on a server without internet: everything they load is served here."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from helpers.server import LiveServer


class _References(HTMLParser):
    """Every URL an HTML page refers to in an attribute (src, href, ReDoc's spec-url)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [
            value for name, value in attrs if name in {"src", "href", "spec-url"} and value
        ]


def _references(page: str) -> list[str]:
    parser = _References()
    parser.feed(page)
    # Swagger UI is told where the description is in its inline script.
    return parser.urls + re.findall(r"\burl: '([^']*)'", page)


@pytest.mark.parametrize(
    ("page", "assets"),
    [
        ("/docs", {"swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"}),
        ("/redoc", {"redoc.standalone.js", "favicon-32x32.png"}),
    ],
)
def test_docs_pages_load_nothing_from_another_host(
    page: str, assets: set[str], server: LiveServer, client: httpx.Client
) -> None:
    response = client.get(page)  # no key: the docs are public, as before
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    # No absolute URL anywhere in the page, inline script included (a CDN, Google Fonts).
    assert "://" not in response.text
    urls = _references(response.text)
    origin = urlsplit(server.url)
    served = []
    for url in urls:
        absolute = urlsplit(urljoin(f"{server.url}{page}", url))
        assert (absolute.scheme, absolute.netloc) == (origin.scheme, origin.netloc), url
        asset = client.get(absolute.path)
        assert asset.status_code == 200, url
        assert asset.content, url
        served.append(absolute.path)
    assert {path.rsplit("/", 1)[-1] for path in served} >= assets
    assert "/openapi.json" in served


def test_docs_assets_have_their_types_and_the_oauth2_redirect_is_kept(
    client: httpx.Client,
) -> None:
    javascript = {"text/javascript", "application/javascript"}  # by the system's mime.types
    types = {
        "swagger-ui-bundle.js": javascript,
        "redoc.standalone.js": javascript,
        "swagger-ui.css": {"text/css"},
        "favicon-32x32.png": {"image/png"},
    }
    for name, media_types in types.items():
        response = client.get(f"/static/docs/{name}")
        assert response.status_code == 200
        assert response.headers["content-type"].split(";")[0] in media_types
    assert client.head("/docs").status_code == 200
    redirect = client.get("/docs/oauth2-redirect")
    assert redirect.status_code == 200
    assert "://" not in redirect.text
    # Anything else under the mount is an ordinary 404 in the surface's error body.
    missing = client.get("/static/docs/no-such-file.js")
    assert missing.status_code == 404
    assert missing.json() == {"error": "Not found"}
    assert client.post("/static/docs/swagger-ui.css").status_code == 405
