"""Entities from a URL (`POST /api/enrichment/batch/fetch`): CSV, a JSON array (or an
object whose `entities` is one) or NDJSON, fetched through the guarded web fetch (the SSRF
guard on every hop, `fetch_max_bytes`, `fetch_timeout_seconds`)."""

from __future__ import annotations

import csv
import io
from typing import Any

import orjson

from openenrich.errors import BadRequest
from openenrich.web.fetch import Fetcher

CONTENT_TYPES = (
    "text/csv",
    "application/csv",
    "application/json",
    "application/x-ndjson",
    "application/ndjson",
    "application/jsonl",
    "application/octet-stream",
    "text/plain",
)


def sniff(content_type: str, text: str) -> str:
    """csv, json or ndjson, from the content type, else the content."""
    if "csv" in content_type:
        return "csv"
    if "ndjson" in content_type or "jsonl" in content_type:
        return "ndjson"
    body = text.lstrip()
    if body.startswith("["):
        return "json"
    if body.startswith("{"):
        first = body.split("\n", 1)[0].strip()
        try:
            orjson.loads(first)
        except orjson.JSONDecodeError:
            return "json"  # one object over several lines
        return "ndjson" if "\n" in body.strip() or "entities" not in first else "json"
    return "csv"


def parse(text: str, format: str) -> list[dict[str, Any]]:
    if format == "csv":
        rows = csv.DictReader(io.StringIO(text))
        entities = [
            {key: value for key, value in row.items() if key and value not in (None, "")}
            for row in rows
        ]
    elif format == "ndjson":
        entities = []
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    entities.append(orjson.loads(line))
                except orjson.JSONDecodeError as error:
                    raise BadRequest(f"Line {number} is not JSON: {error}") from None
    else:
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError as error:
            raise BadRequest(f"The content is not JSON: {error}") from None
        if isinstance(data, dict) and isinstance(data.get("entities"), list):
            data = data["entities"]
        if not isinstance(data, list):
            raise BadRequest("The JSON is not an array of entities")
        entities = data
    for n, entity in enumerate(entities):
        if not isinstance(entity, dict):
            raise BadRequest(f"Entity {n} is not a JSON object")
    return [entity for entity in entities if entity]


async def fetch_entities(
    fetcher: Fetcher, url: str, format: str | None, limit: int
) -> list[dict[str, Any]]:
    page = await fetcher.fetch(url, content_types=CONTENT_TYPES)
    text = page.body.decode(page.encoding, errors="replace").lstrip("\ufeff")
    entities = parse(text, format or sniff(page.content_type, text))
    if len(entities) > limit:
        raise BadRequest(f"{url} holds {len(entities)} entities; a batch takes at most {limit}")
    return entities
