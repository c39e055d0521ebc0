"""Every route in /openapi.json against a table of bad input: no answer >= 500, no hang.

The routes, their path, query and header parameters and their body shapes come from the
spec the server serves, so a route is swept from the day it is added. Each test sends many
requests and collects what went wrong instead of stopping at the first: its failure lists
every offending request (method, path, input, status or time, and the cause the server
logged), which is what a fix needs.

A request fails when the answer is >= 500, when it takes longer than the server's own
longest limit for it (a hang is reported by name), when the connection drops mid-answer,
or when the server logs an unhandled error while answering; and a test fails when
background work (flushers, the stats writer) logs an error while or after it runs.

Run with `-s` to see how many requests each test sent, and its slowest.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import selectors
import socket
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from helpers.server import LiveServer
from helpers.tenants import Tenants, bearer
from openenrich.config import Settings

# The slowest thing a swept request may legitimately do is a query that runs into its time
# limit; the sweep runs with a short one so that a limit that is not enforced shows quickly.
QUERY_TIMEOUT = 2.0
BUDGET = QUERY_TIMEOUT + 3.0  # longer than this is a failure ("slow")
HANG = BUDGET + 3.0  # no answer by then is a hang
BODY_READ_TIMEOUT = 1.0  # a body that stops arriving is answered (408) after this
SSE_WINDOW = 0.5  # how long an event stream is read before the client leaves
# Who logs an error that escaped a route: our last-resort handler, and uvicorn for one
# raised after the response started.
REQUEST_LOGGERS = frozenset({"openenrich.http", "uvicorn.error"})
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
SETTLE = 1.5  # longer than the stats writer's interval (stats_flush_seconds, 1 s)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        query_timeout_seconds=QUERY_TIMEOUT,
        body_read_timeout_seconds=BODY_READ_TIMEOUT,
        # Event streams send something often, so the client sees a dropped stream quickly.
        sse_heartbeat_seconds=0.2,
        job_poll_seconds=0.2,
        # Thousands of requests from one key: the per-key limits would answer most of them
        # with 429 before they reach the code under test.
        runs_create_per_minute=1_000_000,
        runs_reads_per_minute=1_000_000,
        runs_max_active=1_000_000,
        leads_requests_per_minute=1_000_000,
        # The plausible webhook endpoint is on loopback: there is no DNS in CI.
        allow_private_urls=True,
    )


# -- what the server logged while each request ran ------------------------------------------


class LogRecords(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def server_log() -> Iterator[LogRecords]:
    handler = LogRecords()
    # uvicorn's own loggers do not propagate to the root: "Exception in ASGI application"
    # (an error after the response started) is only seen on them.
    loggers = [logging.getLogger(), logging.getLogger("uvicorn")]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield handler
    finally:
        for logger in loggers:
            logger.removeHandler(handler)


def cause(record: logging.LogRecord) -> str:
    """The exception and the innermost frame of ours it came from, or the message."""
    if not record.exc_info or record.exc_info[1] is None:
        return f"{record.name}: {record.getMessage()[:200]}"
    error = record.exc_info[1]
    frames = traceback.extract_tb(error.__traceback__)
    ours = [f for f in frames if "/openenrich/" in f.filename] or frames
    where = ""
    if ours:
        frame = ours[-1]
        where = f" at {frame.filename.split('/src/')[-1]}:{frame.lineno} ({frame.name})"
        if frames and frames[-1] is not frame:
            last = frames[-1]
            where += f" -> {last.filename.rsplit('/', 1)[-1]}:{last.lineno}"
    return f"{type(error).__module__}.{type(error).__qualname__}: {str(error)[:160]}{where}"


# -- one request, and what became of it -----------------------------------------------------


@dataclass(frozen=True)
class Probe:
    method: str
    route: str  # the path template from the spec
    path: str  # what is sent, already percent-encoded
    input: str  # what is bad about this request
    headers: dict[str, str | bytes] = field(default_factory=dict)
    content: bytes | None = None


# Stands for the request being answered when background work logged something after the
# last one.
AFTER_THE_LAST = Probe("-", "-", "-", "after the last request")


@dataclass
class Outcome:
    probe: Probe
    status: int | None
    seconds: float
    problem: str | None
    logged: list[str]

    def describe(self) -> str:
        status = self.status if self.status is not None else "no answer"
        path = self.probe.path if len(self.probe.path) <= 120 else self.probe.path[:117] + "…"
        line = (
            f"{self.probe.method} {path} [{self.probe.input}] -> {status} in {self.seconds:.2f} s"
        )
        if self.problem:
            line += f": {self.problem}"
        for entry in self.logged:
            line += f"\n      server log: {entry}"
        return line


class Sweeper:
    """Sends probes one after another on one keep-alive connection and keeps the failures."""

    def __init__(self, base_url: str, log: LogRecords, label: str) -> None:
        self.base_url = base_url
        self.client = httpx.Client(base_url=base_url, timeout=HANG)
        self.log = log
        self.label = label
        self.sent = 0
        self.failures: list[Outcome] = []
        # Errors logged by background work (flushers, writers, workers), by cause, with the
        # requests that were being answered when they were logged.
        self.background: dict[str, list[Probe]] = {}
        self.started = time.perf_counter()
        self.slowest = Outcome(AFTER_THE_LAST, None, 0.0, None, [])

    def send(self, probe: Probe) -> Outcome:
        self.sent += 1
        seen = len(self.log.records)
        status: int | None = None
        problem: str | None = None
        started = time.perf_counter()
        seconds = 0.0
        try:
            with self.client.stream(
                probe.method,
                probe.path,
                headers=probe.headers,
                content=probe.content,
                timeout=HANG,
            ) as response:
                status = response.status_code
                seconds = time.perf_counter() - started
                if response.headers.get("content-type", "").startswith("text/event-stream"):
                    # An event stream may rightly go on for ever: read it for a moment and
                    # leave, which is enough to see one that breaks after its 200.
                    for _ in response.iter_raw():
                        if time.perf_counter() - started - seconds > SSE_WINDOW:
                            break
                else:
                    response.read()
                    seconds = time.perf_counter() - started
        except httpx.TimeoutException:
            seconds = time.perf_counter() - started
            problem = f"hang: no complete answer within {HANG:.0f} s"
        except httpx.TransportError as error:
            seconds = time.perf_counter() - started
            problem = f"connection dropped: {type(error).__name__}: {error}"
        if problem is None and status is not None and status >= 500:
            problem = "server error"
        if problem is None and seconds > BUDGET:
            problem = f"slow: over the {BUDGET:.0f} s the server's own limits allow"
        if problem is not None or (status is not None and status >= 500):
            # What went wrong may be logged just after the answer (uvicorn logs an
            # exception that escaped the app once the 500 is sent), and uvicorn then closes
            # the connection: wait for the log, and start the next probe on a new one, so
            # that neither is blamed on the next request.
            time.sleep(0.05)
            self.client.close()
            self.client = httpx.Client(base_url=self.base_url, timeout=HANG)
        records = self.log.records[seen:]
        answering = [r for r in records if r.name in REQUEST_LOGGERS]
        for record in records:
            if record.name not in REQUEST_LOGGERS:
                self.background.setdefault(cause(record), []).append(probe)
        logged = list(dict.fromkeys(cause(record) for record in answering))
        if problem is None and answering:
            problem = "unhandled error in the server log"
        outcome = Outcome(probe, status, seconds, problem, logged)
        if seconds > self.slowest.seconds:
            self.slowest = outcome
        if problem is not None:
            self.failures.append(outcome)
        return outcome

    def close(self) -> None:
        self.client.close()

    def report(self) -> str:
        elapsed = time.perf_counter() - self.started
        slowest = self.slowest
        summary = (
            f"{self.label}: {self.sent} requests in {elapsed:.1f} s; slowest "
            f"{slowest.seconds:.2f} s: {slowest.probe.method} {slowest.probe.path[:60]} "
            f"[{slowest.probe.input}]"
        )
        print(summary)
        if not self.failures and not self.background:
            return summary
        lines = [f"{summary}; {len(self.failures)} failed:"]
        lines += [f"  {outcome.describe()}" for outcome in self.failures]
        if self.background:
            lines.append("background work logged errors (while answering):")
        for logged, probes in self.background.items():
            first = probes[0]
            lines.append(
                f"  {len(probes)}x {logged}\n      first while: {first.method} "
                f"{first.path[:100]} [{first.input}]"
            )
        return "\n".join(lines)

    def check(self) -> None:
        self.close()
        # Background writers run every second or so: what they make of the last requests
        # shows in the log by then.
        seen = len(self.log.records)
        time.sleep(SETTLE)
        for record in self.log.records[seen:]:
            self.background.setdefault(cause(record), []).append(AFTER_THE_LAST)
        report = self.report()
        assert not self.failures, report
        assert not self.background, report


# -- the spec: routes, parameters, plausible values -----------------------------------------


@dataclass(frozen=True)
class Operation:
    method: str
    route: str
    path_params: list[str]
    query_params: list[dict[str, Any]]
    header_params: list[str]
    body_schema: dict[str, Any] | None
    takes_body: bool


def operations(spec: dict[str, Any]) -> list[Operation]:
    found = []
    for route, item in spec["paths"].items():
        for method, operation in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            parameters = [*item.get("parameters", []), *operation.get("parameters", [])]
            content = operation.get("requestBody", {}).get("content", {})
            schema = next(iter(content.values()), {}).get("schema") if content else None
            found.append(
                Operation(
                    method=method.upper(),
                    route=route,
                    path_params=[p["name"] for p in parameters if p["in"] == "path"],
                    query_params=[p for p in parameters if p["in"] == "query"],
                    header_params=[p["name"] for p in parameters if p["in"] == "header"],
                    body_schema=schema,
                    takes_body=bool(content) or method.upper() in BODY_METHODS,
                )
            )
    # Deleting last keeps the plausible resources alive for every other route.
    return sorted(found, key=lambda op: op.method == "DELETE")


def resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = spec["components"]["schemas"][name]
    return schema


def known_name(name: str) -> str:
    """`X-Stream-Id` (a header) and `stream_id` (a field) name the same thing."""
    name = name.lower().replace("-", "_")
    return name.removeprefix("x_")


def plausible(
    spec: dict[str, Any], schema: dict[str, Any], known: dict[str, str], depth: int = 0
) -> Any:
    """A value the schema accepts, or close enough that the route reads it; a field named
    like a resource the sweep made (stream_id, thread_id, …) gets that resource's id."""
    schema = resolve(spec, schema)
    if "example" in schema:
        return schema["example"]
    if schema.get("examples"):
        return schema["examples"][0]
    if not schema.get("type") and not any(k in schema for k in ("anyOf", "oneOf", "$ref")):
        return schema.get("default")  # any value: left out, the route's own default
    if schema.get("default") not in (None, ""):
        return schema["default"]
    if "enum" in schema:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        choices = [c for c in schema.get(key, []) if resolve(spec, c).get("type") != "null"]
        if choices:
            return plausible(spec, choices[0], known, depth + 1)
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        if depth > 4:
            return {}
        properties = schema.get("properties", {})
        return {
            name: known[known_name(name)]
            if known_name(name) in known
            else plausible(spec, sub, known, depth + 1)
            for name, sub in properties.items()
        } or {"name": "sweep"}
    if kind == "array":
        return [plausible(spec, schema.get("items", {}), known, depth + 1)]
    if kind == "integer":
        return int(schema.get("minimum", 1))
    if kind == "number":
        return float(schema.get("minimum", 1))
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    if schema.get("format") == "date-time":
        return "2024-05-01T12:00:00Z"
    if schema.get("format") == "date":
        return "2024-05-01"
    return "sweep"


# -- the table of bad input ------------------------------------------------------------------


def nest(depth: int, opening: bytes, closing: bytes, inner: bytes = b"1") -> bytes:
    return opening * depth + inner + closing * depth


# JSON fragments (raw bytes: some are not JSON, or not UTF-8) put in place of a whole body
# and of each field in a plausible body.
VALUES: list[tuple[str, bytes]] = [
    ("null", b"null"),
    ("true", b"true"),
    ("0", b"0"),
    ("-1", b"-1"),
    ("huge integer", b"99999999999999999999999"),
    ("huge negative integer", b"-99999999999999999999999"),
    ("1e400", b"1e400"),
    ("-1e400", b"-1e400"),
    ("1.5", b"1.5"),
    ("NaN", b"NaN"),
    ("empty string", b'""'),
    ("300 characters", b'"' + b"x" * 300 + b'"'),
    ("5000 characters", b'"' + b"x" * 5000 + b'"'),
    ("huge string", b'"' + b"x" * 200_000 + b'"'),
    ("NUL escape", b'"a\\u0000b"'),
    ("raw NUL byte", b'"a\x00b"'),
    ("lone surrogate", b'"\\ud800"'),
    ("lone low surrogate", b'"x\\udfff"'),
    ("invalid UTF-8", b'"\xff\xfe"'),
    ("overlong UTF-8", b'"\xc0\xaf"'),
    ("empty array", b"[]"),
    ("empty object", b"{}"),
    ("array of wrong types", b'[null, 1, "x", [], {}]'),
    ("object with invalid UTF-8 in a value", b'{"a": "\xff\xfe"}'),
    ("object with invalid UTF-8 in a key", b'{"\xff\xfe": 1}'),
    ("object with a lone surrogate key", b'{"\\ud800": 1}'),
    ("nested [ x1000", nest(1000, b"[", b"]")),
    ("nested { x1000", nest(1000, b'{"a":', b"}")),
    ("nested [ x100000", nest(100_000, b"[", b"]")),
]

# Whole bodies besides VALUES.
BODIES: list[tuple[str, bytes]] = [
    ("empty body", b""),
    ("whitespace", b" \n\t "),
    ("not JSON", b"not json"),
    ("truncated JSON", b'{"a": '),
    ("trailing garbage", b"{} x"),
    ("two documents", b"{}{}"),
    ("comment", b'{"a": 1 /* x */}'),
    ("single quotes", b"{'a': 1}"),
    ("BOM", b"\xef\xbb\xbf{}"),
    ("UTF-16", "{}".encode("utf-16")),
    ("invalid UTF-8 outside strings", b"{\xff}"),
    ("closing brackets only", b"]]]]}}}}"),
    ("nested [ x100", nest(100, b"[", b"]")),
    ("nested { x100", nest(100, b'{"a":', b"}")),
    ("nested { x100000", nest(100_000, b'{"a":', b"}")),
    ("unclosed [ x100000", b"[" * 100_000),
    ("huge string body", b'"' + b"x" * 1_000_000 + b'"'),
    ("duplicate keys", b'{"a": 1, "a": [], "a": null}'),
]

# Put into each object of a plausible body as an extra key.
BAD_KEYS: list[tuple[str, bytes]] = [
    ("invalid UTF-8 key", b'"\xff\xfe"'),
    ("lone surrogate key", b'"\\ud800"'),
    ("NUL key", b'"\\u0000"'),
    ("empty key", b'""'),
    ("300-character key", b'"' + b"k" * 300 + b'"'),
    ("huge key", b'"' + b"k" * 100_000 + b'"'),
]

CONTENT_TYPES: list[tuple[str, str | bytes | None]] = [
    ("form content type", "application/x-www-form-urlencoded"),
    ("text/plain", "text/plain"),
    ("multipart without boundary", "multipart/form-data"),
    ("JSON in UTF-16", "application/json; charset=utf-16"),
    ("unknown charset", "application/json; charset=x-nonsense"),
    ("XML", "application/xml"),
    ("no content type", None),
    ("garbage content type", ";;;=;"),
    ("latin-1 bytes in content type", b"application/json; x=\xff"),
    ("huge content type", "application/json; x=" + "y" * 8000),
]

BAD_IDS: list[tuple[str, str]] = [
    ("missing id", "sweep-missing"),
    ("very long id", "a" * 8000),
    ("%00", "%00"),
    ("NUL inside", "a%00b"),
    ("unicode", quote("ünïcødé-☃-😀")),
    ("'..'", "%2e%2e"),
    ("'.'", "%2e"),
    ("../ escape", "..%2F..%2Fetc%2Fpasswd"),
    ("invalid UTF-8", "%ff%fe"),
    ("encoded surrogate", "%ed%a0%80"),
    ("huge number", "99999999999999999999999"),
    ("-1", "-1"),
    ("1e400", "1e400"),
    ("space", "%20"),
    ("newline", "%0a"),
    ("SQL", quote("'; drop table streams; --", safe="")),
    ("percent", "%25"),
    ("upper case", "SWEEP"),
]

QUERY_VALUES: list[tuple[str, str]] = [
    ("huge number", "99999999999999999999999"),
    ("huge negative number", "-99999999999999999999999"),
    ("-1", "-1"),
    ("0", "0"),
    ("1e400", "1e400"),
    ("-1e400", "-1e400"),
    ("nan", "nan"),
    ("inf", "inf"),
    ("abc", "abc"),
    ("empty", ""),
    ("NUL", "\x00"),
    ("invalid UTF-8", "%ff%fe"),
    ("lone surrogate", "%ed%a0%80"),
    ("unicode", "ünïcødé-☃"),
    ("very long", "9" * 8000),
    ("bad date", "2024-02-30"),
    ("far date", "99999-01-01"),
]

HEADER_VALUES: list[tuple[str, str | bytes]] = [
    ("huge number", "99999999999999999999999"),
    ("-1", "-1"),
    ("1e400", "1e400"),
    ("empty", ""),
    ("very long", "h" * 8000),
    ("latin-1 bytes", b"caf\xe9"),
    ("invalid UTF-8", b"\xff\xfe"),
    ("path traversal", "../../etc"),
    ("unicode as UTF-8", "ünïcødé".encode()),
]

# Sent on every route, besides the headers a route declares.
COMMON_HEADERS: list[tuple[str, dict[str, str | bytes]]] = [
    ("Last-Event-ID huge", {"Last-Event-ID": "99999999999999999999999"}),
    ("Idempotency-Key very long", {"Idempotency-Key": "k" * 8000}),
    ("X-Stream-Id bad", {"X-Stream-Id": b"\xff../\xfe"}),
    ("Accept CSV", {"Accept": "text/csv"}),
    ("Accept Arrow", {"Accept": "application/vnd.apache.arrow.stream"}),
    ("Accept garbage", {"Accept": ";;;q=abc"}),
    ("Content-Encoding gzip (not gzipped)", {"Content-Encoding": "gzip"}),
]


# -- building requests -----------------------------------------------------------------------

SLOT = "\x1bslot\x1b"
KEY = "\x1bkey\x1b"


def dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()


def with_fragment(value: Any, path: tuple[Any, ...], fragment: bytes) -> bytes:
    """`value` as JSON with the element at `path` replaced by raw `fragment`."""
    marked = json.loads(json.dumps(value))
    if not path:
        return fragment
    target = marked
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = SLOT
    return dumps(marked).replace(dumps(SLOT), fragment)


def with_key(value: Any, path: tuple[Any, ...], key: bytes) -> bytes:
    """`value` as JSON with an extra key (raw bytes) in the object at `path`."""
    marked = json.loads(json.dumps(value))
    target = marked
    for step in path:
        target = target[step]
    target[KEY] = 1
    return dumps(marked).replace(dumps(KEY), key)


def pruned(value: Any) -> Any:
    """`value` without the fields whose plausible value is null (left to their default)."""
    if isinstance(value, dict):
        return {k: pruned(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [pruned(v) for v in value]
    return value


def slots(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], bool]]:
    """Every place in `value`, and whether it holds an object."""
    if path:
        yield path, isinstance(value, dict)
    if isinstance(value, dict):
        for name, sub in value.items():
            yield from slots(sub, (*path, name))
    elif isinstance(value, list) and value:
        yield from slots(value[0], (*path, 0))


def show(path: tuple[Any, ...]) -> str:
    return "".join(f"[{step}]" if isinstance(step, int) else f".{step}" for step in path) or "."


@dataclass
class Sweep:
    """The live server, its spec and a plausible resource for every path parameter."""

    spec: dict[str, Any]
    admin: dict[str, str | bytes]
    reader: dict[str, str | bytes]
    ids: dict[str, str]

    def using(self, **ids: str) -> Sweep:
        return dataclasses.replace(self, ids={**self.ids, **ids})

    def path(self, op: Operation, **overrides: str) -> str:
        path = op.route
        for name in op.path_params:
            value = overrides.get(name, quote(self.ids.get(known_name(name), "sweep"), safe=""))
            path = path.replace("{" + name + "}", value)
        return path

    def body(self, op: Operation) -> Any:
        if op.body_schema is None:
            return None
        return plausible(self.spec, op.body_schema, self.ids)

    def probe(
        self,
        op: Operation,
        name: str,
        *,
        path: str | None = None,
        content: bytes | None = None,
        headers: dict[str, str | bytes] | None = None,
        auth: dict[str, str | bytes] | None = None,
        content_type: str | bytes | None = "application/json",
    ) -> Probe:
        sent: dict[str, str | bytes] = dict(self.admin if auth is None else auth)
        for header in op.header_params:
            if known_name(header) in self.ids:
                sent[header] = self.ids[known_name(header)]
        if content is not None and content_type is not None:
            sent["Content-Type"] = content_type
        sent.update(headers or {})
        return Probe(op.method, op.route, path or self.path(op), name, sent, content)

    def plausible_content(self, op: Operation) -> bytes | None:
        body = self.body(op)
        if body is not None:
            return dumps(pruned(body))
        return b"{}" if op.takes_body else None


# A stream in each schema mode: ingest takes a different path through each.
STREAMS = {
    "sweep": {"schema_mode": "flex"},
    "sweep_strict": {
        "schema_mode": "strict",
        "fields": {"name": {"type": "string"}, "n": {"type": "int64"}, "x": {"type": "float64"}},
    },
    "sweep_evolve": {"schema_mode": "evolve"},
}


def create_resources(client: httpx.Client, tenants: Tenants) -> Sweep:
    key = tenants.key("acme")
    admin: dict[str, str | bytes] = dict(bearer(key))

    def ok(response: httpx.Response) -> dict[str, Any]:
        assert response.status_code < 300, response.text
        body: dict[str, Any] = response.json()
        return body

    for stream_id, config in STREAMS.items():
        ok(client.post("/streams", headers=admin, json={"stream_id": stream_id, **config}))
        event = {"name": "sweep", "n": 1, "x": 1.5}
        ok(client.post("/ingest", headers=admin, json={"stream_id": stream_id, "data": [event]}))
    spare = ok(client.post("/api/auth/api-keys", headers=admin, json={"name": "spare"}))
    hook = ok(
        client.post("/api/v1/webhooks", headers=admin, json={"url": "http://127.0.0.1:9/hook"})
    )
    ok(
        client.post(
            "/api/v1/workflows",
            headers=admin,
            json={"slug": "sweep", "content": "1. `pan_verification`\n2. `email_verification`"},
        )
    )
    run = ok(
        client.post(
            "/api/v1/runs", headers=admin, json={"message": "PAN ABCDE1234F", "workflow": "sweep"}
        )
    )
    ok(client.put("/v1/settings/api-keys/OPENAI", headers=admin, json={"api_key": "sk-sweep"}))
    pipeline = ok(client.post("/v1/pipelines", headers=admin, json={"pipeline_name": "sweep"}))
    ok(
        client.post(
            f"/v1/pipelines/{pipeline['pipeline_id']}/leads",
            headers=admin,
            json=[{"email": "sweep@example.com"}],
        )
    )
    schema = ok(
        client.post(
            "/api/schema/saved",
            headers=admin,
            json={
                "name": "sweep",
                "entity_type": "company",
                "json_schema": {"type": "object", "properties": {"name": {"type": "string"}}},
            },
        )
    )
    spec = client.get("/openapi.json").json()
    return Sweep(
        spec=spec,
        admin=admin,
        reader=dict(bearer(tenants.key("acme", role="read"))),
        ids={
            "stream_id": "sweep",
            "prefix": spare["prefix"],
            "endpoint_id": hook["id"],
            "slug": "sweep",
            "workflow": "sweep",
            "run_id": run["id"],
            "thread_id": run["thread_id"],
            "provider": "OPENAI",
            "pipeline_id": pipeline["pipeline_id"],
            "schema_id": schema["id"],
        },
    )


def backend(database_url: str) -> str:
    return database_url.split(":", 1)[0]


@pytest.fixture
def sweep(client: httpx.Client, tenants: Tenants) -> Sweep:
    return create_resources(client, tenants)


@pytest.fixture
def sweeper(server: LiveServer, server_log: LogRecords, database_url: str) -> Iterator[Sweeper]:
    sweeper = Sweeper(server.url, server_log, backend(database_url))
    yield sweeper
    sweeper.close()


# -- the tests -------------------------------------------------------------------------------


def body_probes(sweep: Sweep, op: Operation, whole: bool = True) -> Iterator[Probe]:
    """Bad whole bodies and content types (unless not `whole`), then each field of a
    plausible body set to each bad value, and bad keys in each of its objects."""
    if whole:
        for name, content in [*BODIES, *VALUES]:
            yield sweep.probe(op, f"body: {name}", content=content)
        plausible_content = sweep.plausible_content(op)
        assert plausible_content is not None
        for name, content_type in CONTENT_TYPES:
            yield sweep.probe(
                op, f"{name}, JSON body", content=plausible_content, content_type=content_type
            )
        yield sweep.probe(
            op,
            "form content type, form body",
            content=b"a=1&b=%ff",
            content_type="application/x-www-form-urlencoded",
        )
    full = sweep.body(op)
    if full is None:
        return
    # Every field the schema names is tried, also those the plausible body leaves out.
    body = pruned(full)
    for path, is_object in slots(full):
        for name, fragment in VALUES:
            yield sweep.probe(
                op, f"{show(path)} = {name}", content=with_fragment(body, path, fragment)
            )
        if is_object:
            for name, key in BAD_KEYS:
                yield sweep.probe(op, f"{show(path)}: {name}", content=with_key(body, path, key))
    if isinstance(body, dict):
        for name, key in BAD_KEYS:
            yield sweep.probe(op, f"top level: {name}", content=with_key(body, (), key))


def names_a_stream(sweep: Sweep, op: Operation) -> bool:
    body = sweep.body(op)
    return (
        "stream_id" in op.path_params
        or any(known_name(header) == "stream_id" for header in op.header_params)
        or (isinstance(body, dict) and "stream_id" in body)
    )


def test_every_route_with_bad_bodies(sweep: Sweep, sweeper: Sweeper) -> None:
    sweeper.label = f"bodies [{sweeper.label}]"
    ops = operations(sweep.spec)
    for op in ops:
        if not op.takes_body:
            continue
        for stream_id in STREAMS if names_a_stream(sweep, op) else [sweep.ids["stream_id"]]:
            # A body that is bad as a whole never reaches a stream: once is enough.
            whole = stream_id == sweep.ids["stream_id"]
            for probe in body_probes(sweep.using(stream_id=stream_id), op, whole):
                sweeper.send(probe)
    # What was accepted above must not break what reads it later: flushing to Parquet,
    # the dead-letter queue, schema tracking, queries.
    for stream_id in STREAMS:
        each = sweep.using(stream_id=stream_id)
        for op in ops:
            if "stream_id" in op.path_params and op.method != "DELETE":
                sweeper.send(each.probe(op, "after the bad bodies", content=b"{}"))
        query = next(op for op in ops if op.route == "/query")
        for sql in (
            f"select * from {stream_id}",
            f"select count(*), max(_ingested_at) from {stream_id}",
        ):
            sweeper.send(each.probe(query, sql, content=dumps({"sql": sql})))
    sweeper.check()


def parameter_probes(sweep: Sweep, op: Operation) -> Iterator[Probe]:
    content = sweep.plausible_content(op)
    yield sweep.probe(op, "plausible", content=content)
    for param in op.path_params:
        for name, value in BAD_IDS:
            path = sweep.path(op, **{param: value})
            yield sweep.probe(op, f"{{{param}}} {name}", path=path, content=content)
    for param in op.query_params:
        for name, value in QUERY_VALUES:
            query = f"{quote(param['name'])}={quote(value, safe='%')}"
            yield sweep.probe(
                op, f"?{param['name']} {name}", path=f"{sweep.path(op)}?{query}", content=content
            )
        repeated = f"{param['name']}=1&{param['name']}=abc"
        yield sweep.probe(
            op, f"?{param['name']} twice", path=f"{sweep.path(op)}?{repeated}", content=content
        )
    for header in op.header_params:
        for name, value in HEADER_VALUES:
            yield sweep.probe(op, f"{header}: {name}", headers={header: value}, content=content)
    for name, headers in COMMON_HEADERS:
        yield sweep.probe(op, name, headers=headers, content=content)
    yield sweep.probe(op, "no key", content=content, auth={})
    yield sweep.probe(
        op, "Bearer of invalid UTF-8", content=content, auth={"Authorization": b"Bearer \xff\xfe"}
    )
    yield sweep.probe(op, "X-API-Key very long", content=content, auth={"X-API-Key": "k" * 8000})
    yield sweep.probe(op, "read key", content=content, auth=sweep.reader)


def test_every_route_with_bad_ids_parameters_and_headers(sweep: Sweep, sweeper: Sweeper) -> None:
    sweeper.label = f"ids, parameters, headers [{sweeper.label}]"
    ops = operations(sweep.spec)
    for op in ops:
        for probe in parameter_probes(sweep, op):
            sweeper.send(probe)
    # A read key on a few routes with bad bodies too: refusals must come before parsing
    # goes wrong, and routes a read key may use (POST /query) parse what it sends.
    for op in ops:
        if op.takes_body:
            for name, content in [
                ("not JSON", b"not json"),
                ("invalid UTF-8", b'{"a": "\xff\xfe"}'),
            ]:
                sweeper.send(
                    sweep.probe(op, f"read key, {name}", content=content, auth=sweep.reader)
                )
    sweeper.check()


def test_every_route_answers_a_body_that_never_finishes(
    sweep: Sweep, server: LiveServer, server_log: LogRecords, database_url: str
) -> None:
    """Content-Length: 100 and 10 bytes sent: an answer (408) within the time limits, never
    a connection held for ever. All routes at once, so a hang costs one wait, not one each."""
    label = f"unfinished bodies [{backend(database_url)}]"
    key = sweep.admin["Authorization"]
    assert isinstance(key, str)
    sockets: dict[socket.socket, tuple[Operation, bytearray]] = {}
    selector = selectors.DefaultSelector()
    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        for op in operations(sweep.spec):
            if not op.takes_body:
                continue
            sock = stack.enter_context(socket.create_connection(("127.0.0.1", server.port)))
            head = (
                f"{op.method} {sweep.path(op)} HTTP/1.1\r\nHost: test\r\n"
                f"Authorization: {key}\r\nContent-Type: application/json\r\n"
                "Content-Length: 100\r\n\r\n"
            )
            sock.sendall(head.encode() + b'{"a": "b",')
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ)
            sockets[sock] = (op, bytearray())
        open_ = set(sockets)
        while open_ and time.perf_counter() - started < BODY_READ_TIMEOUT + 3:
            for ready, _ in selector.select(timeout=0.2):
                sock = ready.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    data = sock.recv(65536)
                except ConnectionError:
                    data = b""
                sockets[sock][1].extend(data)
                if not data or b"\r\n\r\n" in sockets[sock][1]:
                    selector.unregister(sock)
                    open_.discard(sock)
        selector.close()
    seconds = time.perf_counter() - started
    failures = []
    for sock, (op, answer) in sockets.items():
        status = answer[9:12].decode() if answer.startswith(b"HTTP/1.1 ") else None
        if sock in open_:
            failures.append(
                f"{op.method} {op.route}: hang, no answer within {BODY_READ_TIMEOUT + 3:.0f} s"
            )
        elif status is None:
            failures.append(f"{op.method} {op.route}: connection closed without an answer")
        elif status.startswith("5"):
            failures.append(f"{op.method} {op.route}: {status}")
    logged = [cause(record) for record in server_log.records]
    summary = f"{label}: {len(sockets)} requests in {seconds:.1f} s"
    print(summary)
    report = "\n  ".join(
        [f"{summary}; failed:", *failures, *(f"server log: {entry}" for entry in logged)]
    )
    assert not failures, report
    assert not logged, report


def test_the_sweep_walks_every_route_in_the_spec(sweep: Sweep) -> None:
    """The sweep's own guard: every operation in the spec is swept, none by a list of ours."""
    ops = operations(sweep.spec)
    served = {
        (method.upper(), route)
        for route, item in sweep.spec["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    }
    assert {(op.method, op.route) for op in ops} == served
    assert ("POST", "/ingest") in served
    assert all(op.takes_body for op in ops if op.method in BODY_METHODS)
