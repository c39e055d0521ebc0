"""The `url` enricher: a page URL's parts, its UTM fields, and where the visit came from.

The registered domain and public suffix come from tldextract's bundled copy of the Public
Suffix List: it is built with no list URLs and no cache folder, so it never fetches.
Referrer classes compare the referrer's registered domain with the page's: the same is
`internal`, a known search engine `search`, a known network `social`, no referrer
`direct`, anything else `other`.
"""

from __future__ import annotations

import functools
from typing import Any
from urllib.parse import SplitResult, parse_qsl, urlsplit

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import tldextract
from pydantic import Field

from openenrich.enrichers.columns import DistinctCache, strings
from openenrich.enrichers.registry import (
    Enricher,
    EnricherEnv,
    EnricherOptions,
    OutputColumn,
    register,
)

UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")

# Matched on the registered domain's name without its suffix (google.de, google.co.uk).
SEARCH_ENGINES = frozenset(
    {
        "google",
        "bing",
        "yahoo",
        "duckduckgo",
        "baidu",
        "yandex",
        "ecosia",
        "ask",
        "naver",
        "seznam",
        "qwant",
        "startpage",
        "sogou",
        "aol",
        "kagi",
    }
)
SOCIAL_NETWORKS = frozenset(
    {
        "facebook",
        "fb",
        "instagram",
        "twitter",
        "linkedin",
        "reddit",
        "pinterest",
        "tiktok",
        "youtube",
        "snapchat",
        "tumblr",
        "vk",
        "weibo",
        "whatsapp",
        "telegram",
        "discord",
        "quora",
        "threads",
        "mastodon",
        "bsky",
        "medium",
    }
)
# Short domains named whole: their name alone would match too much.
SOCIAL_DOMAINS = frozenset({"t.co", "x.com", "lnkd.in", "youtu.be", "fb.me", "t.me", "wa.me"})


@functools.cache
def _extractor() -> tldextract.TLDExtract:
    # The bundled snapshot only: no list URLs to fetch, no cache folder to write.
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)


def split(url: str) -> SplitResult | None:
    """`url` split; a bare `www.example.com/x` is read as a host and a path."""
    text = url.strip()
    if not text:
        return None
    if "://" not in text and not text.startswith(("/", "?", "#")):
        head = text.split("/", 1)[0]
        if "." in head and " " not in head:
            text = "//" + text
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError:
        return None
    return parts


def registered_domain(host: str) -> tuple[str | None, str | None, str | None]:
    """(registered domain, public suffix, name under the suffix) of a host."""
    extracted = _extractor().extract_str(host)
    if not extracted.suffix:
        return None, None, None
    return extracted.top_domain_under_public_suffix or None, extracted.suffix, extracted.domain


def url_parts(url: str) -> tuple[Any, ...]:
    """(scheme, host, domain, suffix, path, query json, utm_source … utm_content)."""
    parts = split(url)
    if parts is None:
        return (None,) * (6 + len(UTM_FIELDS))
    host = parts.hostname or None
    domain, suffix, _ = registered_domain(host) if host else (None, None, None)
    params: dict[str, Any] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name in params:
            previous = params[name]
            params[name] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            params[name] = value
    query = orjson.dumps(params).decode() if params else None
    utm = tuple(_first(params.get(name)) for name in UTM_FIELDS)
    return (parts.scheme.lower() or None, host, domain, suffix, parts.path or None, query, *utm)


def _first(value: Any) -> str | None:
    if isinstance(value, list):
        value = value[0]
    return value or None


def referrer_source(referrer: str) -> tuple[str | None, str | None]:
    """(the referrer's registered domain or host, its class if search or social)."""
    parts = split(referrer)
    host = parts.hostname if parts else None
    if not host:
        return None, None
    domain, _, name = registered_domain(host)
    if domain in SOCIAL_DOMAINS or name in SOCIAL_NETWORKS:
        kind = "social"
    elif name in SEARCH_ENGINES:
        kind = "search"
    else:
        kind = None
    return domain or host, kind


@register
class UrlEnricher(Enricher):
    name = "url"
    version = 1
    description = (
        "A URL's scheme, host, registered domain, public suffix, path, query parameters and "
        "UTM fields, and the visit's referrer class (search, social, internal, direct, other)"
    )

    class Options(EnricherOptions):
        field: str = Field(default="url", min_length=1)
        referrer_field: str | None = "referrer"
        prefix: str | None = None  # default: the field's name and "_"

    options: Options

    def __init__(self, options: Any, env: EnricherEnv) -> None:
        super().__init__(options, env)
        self.prefix = (
            self.options.prefix if self.options.prefix is not None else f"{self.options.field}_"
        )
        self._parts = DistinctCache(url_parts)
        self._referrers = DistinctCache(referrer_source)

    def inputs(self) -> list[str]:
        return [
            self.options.field,
            *([self.options.referrer_field] if self.options.referrer_field else []),
        ]

    def outputs(self) -> list[OutputColumn]:
        p = self.prefix
        columns = [
            OutputColumn(f"{p}scheme", "string", "the scheme, lower case (https)"),
            OutputColumn(f"{p}host", "string", "the host name, lower case, without port"),
            OutputColumn(f"{p}domain", "string", "the registered domain (example.co.uk)"),
            OutputColumn(f"{p}suffix", "string", "the public suffix (co.uk)"),
            OutputColumn(f"{p}path", "string", "the path"),
            OutputColumn(
                f"{p}query", "json", "the query parameters as an object (a list if repeated)"
            ),
            *(OutputColumn(f"{p}{name}", "string", f"the {name} parameter") for name in UTM_FIELDS),
        ]
        if self.options.referrer_field:
            columns.append(
                OutputColumn(
                    f"{p}referrer_class",
                    "string",
                    "search, social, internal (same registered domain), direct (no referrer) "
                    "or other",
                )
            )
        return columns

    def apply(self, table: pa.Table) -> dict[str, pa.Array]:
        names = [column.name for column in self.outputs()]
        urls = strings(table, self.options.field)
        parts = self._parts.apply(urls, [pa.string()] * (6 + len(UTM_FIELDS)))
        result = dict(zip(names, parts, strict=False))
        if self.options.referrer_field:
            result[f"{self.prefix}referrer_class"] = self._referrer_class(
                strings(table, self.options.referrer_field),
                result[f"{self.prefix}domain"],
                result[f"{self.prefix}host"],
            )
        return result

    def _referrer_class(
        self, referrers: pa.Array, page_domain: pa.Array, page_host: pa.Array
    ) -> pa.Array:
        source, kind = self._referrers.apply(referrers, [pa.string(), pa.string()])
        page = pc.coalesce(page_domain, page_host)
        internal = pc.fill_null(pc.equal(source, page), False)
        direct = pc.is_null(source)
        return pc.if_else(
            direct,
            pa.scalar("direct"),
            pc.if_else(internal, pa.scalar("internal"), pc.coalesce(kind, pa.scalar("other"))),
        )
