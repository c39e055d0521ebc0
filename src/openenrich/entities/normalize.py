"""Values as fusion compares them: two models' answers agree when their normalised forms
are equal, whatever the case, spacing or notation each wrote them in.

    None, a missing key, a blank string    no answer (never a candidate)
    true / false                           themselves (never equal to 1 / 0)
    12, 12.0, "12", "1,200", "1200.50"     numbers: equal when their values are
    "2024-03-01", "2024-03-01T00:00:00Z"   the same day (a midnight timestamp is a day)
    "2024-03-01T09:30:00+01:00"            an instant, compared in UTC
    "https://www.Example.com/", "http://example.com"   the same URL
    " Acme  Inc "  "ACME INC"              text: Unicode NFKC, case-folded, spaces collapsed
    ["b", "a", "a"]  ["A", "B"]            a list of scalars is a set
    [{...}, {...}]                         a list of objects: a multiset (order ignored)
    {"k": ...}                             an object: its keys' normalised values

Strings are read by the field's schema first (`format: date`, `date-time`, `uri` …), then
by their look: an ISO date, an http(s) address or a bare host name ("acme.com/about"), a
number. A number is a plain
decimal with optional thousands commas ("1,200.5"); a leading zero ("02139", a postal
code) keeps it text, as does any suffix ("1.2k", "12%", "$5"): guessing units would make
different answers agree. A normalised value is a hashable key; `plain()` writes it as JSON.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

# A normalised value: a tuple whose first item is its kind.
Key = tuple[Any, ...]
NO_ANSWER: Key = ("none",)

_NUMBER = re.compile(r"[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|[+-]?\.\d+")
_LEADING_ZERO = re.compile(r"[+-]?0\d")
_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_URL = re.compile(
    r"(?:https?://\S+"  # a web address
    r"|(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,63}(?::\d+)?(?:[/?#]\S*)?)\Z",  # a host
    re.IGNORECASE,
)
_URL_FORMATS = frozenset({"uri", "url", "iri", "uri-reference", "iri-reference"})
_DEFAULT_PORTS = frozenset({80, 443})


@dataclass(frozen=True, slots=True)
class Hint:
    """What a field's schema says about its values (`format` only, for strings)."""

    format: str | None = None
    items: Hint | None = None
    properties: tuple[tuple[str, Hint], ...] = ()

    def of(self, name: str) -> Hint:
        return next((hint for key, hint in self.properties if key == name), NO_HINT)


NO_HINT = Hint()


def hint_for(node: Any, root: Any) -> Hint:
    """The hint of a (sub)schema: its format, and its items' and properties' hints."""
    node = resolve(node, root)
    if not isinstance(node, dict):
        return NO_HINT
    form = node.get("format")
    items = node.get("items")
    properties = node.get("properties")
    return Hint(
        format=form if isinstance(form, str) else None,
        items=hint_for(items, root) if isinstance(items, dict) else None,
        properties=tuple((name, hint_for(sub, root)) for name, sub in properties.items())
        if isinstance(properties, dict)
        else (),
    )


def resolve(node: Any, root: Any, depth: int = 0) -> Any:
    """`node` with a local `$ref` followed, and a nullable `anyOf`/`oneOf` (one branch and
    `{"type": "null"}`) reduced to its branch: what the value is when it is there."""
    if not isinstance(node, dict) or depth > 32:
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#"):
        target: Any = root
        for part in ref[1:].split("/")[1:]:
            part = part.replace("~1", "/").replace("~0", "~")
            target = target.get(part) if isinstance(target, dict) else None
        if isinstance(target, dict):
            return resolve(target, root, depth + 1)
    for word in ("anyOf", "oneOf"):
        branches = node.get(word)
        if isinstance(branches, list):
            real = [b for b in branches if not (isinstance(b, dict) and b.get("type") == "null")]
            if len(real) == 1:
                return resolve(real[0], root, depth + 1)
    return node


def normalize(value: Any, hint: Hint = NO_HINT) -> Key:
    if value is None:
        return NO_ANSWER
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float):
        return _number(Decimal(str(value)))
    if isinstance(value, str):
        return _text(value, hint)
    if isinstance(value, list):
        item_hint = hint.items or NO_HINT
        items = [key for key in (normalize(v, item_hint) for v in value) if key != NO_ANSWER]
        if all(key[0] not in ("set", "list", "object") for key in items):
            return ("set", frozenset(items))
        return ("list", tuple(sorted(items, key=repr)))
    if isinstance(value, dict):
        pairs = ((str(k), normalize(v, hint.of(str(k)))) for k, v in value.items())
        return ("object", tuple(sorted((k, key) for k, key in pairs if key != NO_ANSWER)))
    return ("text", str(value))


def plain(key: Key) -> Any:
    """A normalised value as JSON: what the candidates show as `normalized`."""
    kind = key[0]
    if kind == "number":
        number: Decimal = key[1]
        return int(number) if number == number.to_integral_value() else float(number)
    if kind == "set":
        return sorted((plain(item) for item in key[1]), key=repr)
    if kind == "list":
        return [plain(item) for item in key[1]]
    if kind == "object":
        return {name: plain(item) for name, item in key[1]}
    if kind == "none":
        return None
    return key[1]


def _number(number: Decimal) -> Key:
    # normalize() makes 1200, 1200.0 and 1.2E+3 one value; ±0 are equal anyway.
    return ("number", number.normalize() if number.is_finite() else number)


def _text(value: str, hint: Hint) -> Key:
    text = unicodedata.normalize("NFKC", value).strip()
    if not text:
        return NO_ANSWER
    form = hint.format
    if form in ("date", "date-time") or _ISO_DAY.match(text):
        day = _moment(text, form)
        if day is not None:
            return day
    if form in _URL_FORMATS or _URL.match(text):
        url = _url(text)
        if url is not None:
            return url
    if _NUMBER.fullmatch(text) and not _LEADING_ZERO.match(text):
        try:
            return _number(Decimal(text.replace(",", "")))
        except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
            pass
    return ("text", " ".join(text.casefold().split()))


def _moment(text: str, form: str | None) -> Key | None:
    """An ISO date or timestamp: the day when it is a date, a timestamp at midnight (as
    written) or the field's format is `date`; else the instant in UTC (naive: as written)."""
    try:
        if len(text) == 10:
            return ("date", date.fromisoformat(text).isoformat())
        moment = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        return None
    if form == "date" or moment.time() == datetime.min.time():
        return ("date", moment.date().isoformat())
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return ("datetime", moment.isoformat())


def _url(text: str) -> Key | None:
    """Scheme (http and https alike), host case, `www.`, a default port, a trailing
    slash and the fragment do not make URLs differ; the path's case and the query do."""
    if "://" not in text:
        text = "//" + text
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return None
    host = (parts.hostname or "").rstrip(".")
    if not host:
        return None
    host = host.removeprefix("www.")
    if port is not None and port not in _DEFAULT_PORTS:
        host = f"{host}:{port}"
    path = parts.path.rstrip("/")
    query = f"?{parts.query}" if parts.query else ""
    return ("url", f"{host}{path}{query}")
