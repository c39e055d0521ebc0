"""GET /, /console, /console/<page> and /console/static/<file>. No key is needed: a page
is a shell, and what fills it comes from the API, which checks the key on every call."""

from __future__ import annotations

import mimetypes
from functools import cache
from pathlib import Path

from fastapi import APIRouter
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import HTMLResponse, RedirectResponse, Response

from openenrich import __version__
from openenrich.http.routing import JSONRoute

HERE = Path(__file__).parent
STATIC = HERE / "static"

# Path segment (and template) → title; the order is the navigation's.
PAGES: dict[str, str] = {
    "streams": "Streams",
    "query": "Query",
    "runs": "Runs",
    "leads": "Lead pipelines",
    "entities": "Entities",
    "admin": "Admin",
}
TITLES = {**PAGES, "sign-in": "Sign in", "not-found": "Page not found"}
# A page holds no data, but it runs with a key in reach: no script or style from
# anywhere else, no framing.
PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

router = APIRouter(include_in_schema=False, route_class=JSONRoute)  # no bodies, but one rule
_templates = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(),
    trim_blocks=True,
    lstrip_blocks=True,
)


@cache
def _render(page: str) -> str:
    return _templates.get_template(f"{page}.html").render(
        page=page, title=TITLES[page], pages=PAGES, version=__version__
    )


@cache
def _assets() -> dict[str, tuple[bytes, str]]:
    found = {}
    for path in STATIC.iterdir():
        if path.is_file():
            kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            found[path.name] = (path.read_bytes(), kind)
    return found


@router.get("/")
async def root() -> RedirectResponse:
    return RedirectResponse("/console", status_code=307)


@router.get("/console")
async def console() -> RedirectResponse:
    return RedirectResponse("/console/streams", status_code=307)


@router.get("/console/static/{name}")
async def asset(name: str) -> Response:
    found = _assets().get(name)
    if found is None:
        return Response("Not found", status_code=404, media_type="text/plain")
    body, kind = found
    headers = {"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"}
    return Response(body, media_type=kind, headers=headers)


@router.get("/console/{page}")
async def page(page: str) -> HTMLResponse:
    if page != "sign-in" and page not in PAGES:
        return HTMLResponse(_render("not-found"), status_code=404, headers=PAGE_HEADERS)
    return HTMLResponse(_render(page), headers=PAGE_HEADERS)
