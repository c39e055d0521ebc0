"""`extract(html)`: a page's main content as Markdown, with its title, description, links.

trafilatura finds the main content (it scores best among open extractors on published
benchmarks); when what it finds is too short (a landing page that is mostly navigation),
the page's visible text is used instead. CPU-bound: async callers run it in a thread.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import lxml.html
import trafilatura
from lxml.etree import ParserError

MIN_MAIN_CHARS = 200
MAX_LINKS = 500
_SPACES = re.compile(r"[ \t\r\f\v]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")
_BLOCKS = (
    "p", "div", "section", "article", "header", "footer", "nav", "aside", "main", "li",
    "ul", "ol", "table", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "br", "hr", "blockquote",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Extracted:
    markdown: str
    title: str | None
    description: str | None
    links: list[str] = field(default_factory=list)
    method: str = "trafilatura"  # or "text" when the main content was too short


def extract(html: str, url: str | None = None) -> Extracted:
    markdown = (
        trafilatura.extract(
            html,
            url=url,
            output_format="markdown",
            include_links=True,
            include_tables=True,
            include_comments=False,
            with_metadata=False,
        )
        or ""
    ).strip()
    document = _parse(html)
    method = "trafilatura"
    if len(markdown) < MIN_MAIN_CHARS:
        text = _visible_text(document)
        if len(text) > len(markdown):
            markdown, method = text, "text"
    metadata = trafilatura.extract_metadata(html, default_url=url) if html.strip() else None
    # The page's own <title> first: trafilatura prefers the first heading.
    title = _title(document) or (metadata.title if metadata else None)
    description = metadata.description if metadata else None
    return Extracted(markdown, title, description, _links(document, url), method)


def _parse(html: str) -> lxml.html.HtmlElement | None:
    if not html.strip():
        return None
    try:
        return lxml.html.document_fromstring(html)
    except (ParserError, ValueError):
        return None


def _visible_text(document: lxml.html.HtmlElement | None) -> str:
    if document is None:
        return ""
    for element in document.xpath("//script|//style|//noscript|//template|//svg"):
        element.drop_tree()
    for element in document.iter(*_BLOCKS):  # blocks end lines, as a browser shows them
        element.tail = "\n" + (element.tail or "")
    body = document.find("body")
    text = (body if body is not None else document).text_content()
    lines = (_SPACES.sub(" ", line).strip() for line in text.splitlines())
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def _title(document: lxml.html.HtmlElement | None) -> str | None:
    if document is None:
        return None
    found = document.findtext(".//title")
    return found.strip() if found and found.strip() else None


def _links(document: lxml.html.HtmlElement | None, base: str | None) -> list[str]:
    if document is None:
        return []
    seen: dict[str, None] = {}
    for anchor in document.iter("a"):
        href = (anchor.get("href") or "").strip()
        if not href or href.startswith("#"):
            continue
        absolute = urljoin(base, href) if base else href
        if urlsplit(absolute).scheme in ("http", "https"):
            seen.setdefault(absolute.split("#")[0])
        if len(seen) >= MAX_LINKS:
            break
    return list(seen)
