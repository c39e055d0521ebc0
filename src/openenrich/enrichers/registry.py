"""The registry of stream enrichers: named, versioned batch functions over Arrow tables.

An enricher reads some columns of a micro-batch and returns the columns it adds. Built-ins
register exactly as a plugin would, with the class decorator:

    @register
    class Reverse(Enricher):
        name = "reverse"
        version = 1
        description = "The `field` column, reversed"

        class Options(EnricherOptions):
            field: str = "text"

        def inputs(self) -> list[str]: ...
        def outputs(self) -> list[OutputColumn]: ...
        def apply(self, table: pa.Table) -> dict[str, pa.Array]: ...

A package outside this repository registers its enrichers by importing `register` and
naming its module in the `openenrich.enrichers` entry-point group; the registry imports
those modules the first time it is asked for an enricher.

The pipeline runner builds an instance once per (stream, configuration) with `build` and
calls it for every batch: `load` (stateful ones read what they need), `apply` (sync,
vectorised, in the flush thread), `save` (in the flush transaction), then `committed` or
`discarded` depending on how that transaction ended.
"""

from __future__ import annotations

import abc
import importlib
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, ClassVar, Literal, TypeVar

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from openenrich.config import Settings
from openenrich.db import Database
from openenrich.errors import BadRequest

logger = logging.getLogger("openenrich.enrichers")

ENTRY_POINT_GROUP = "openenrich.enrichers"
# The modules of the built-ins: imported by the registry, like a plugin's.
BUILTIN_MODULES = (
    "openenrich.enrichers.url",
    "openenrich.enrichers.user_agent",
    "openenrich.enrichers.geo_ip",
    "openenrich.enrichers.session",
    "openenrich.enrichers.currency",
    "openenrich.enrichers.phone",
    "openenrich.enrichers.email_domain",
    "openenrich.enrichers.identifiers",
    "openenrich.enrichers.mask",
)

ColumnType = Literal["string", "int64", "float64", "boolean", "timestamp", "json"]
ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "int64": pa.int64(),
    "float64": pa.float64(),
    "boolean": pa.bool_(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "json": pa.string(),  # JSON text; DuckDB reads it with json functions
}


@dataclass(frozen=True)
class OutputColumn:
    name: str
    type: ColumnType
    description: str

    @property
    def arrow_type(self) -> pa.DataType:
        return ARROW_TYPES[self.type]


@dataclass(frozen=True)
class StreamScope:
    org_id: str
    environment: str
    stream_id: str


T = TypeVar("T")


@dataclass(frozen=True)
class EnricherEnv:
    """What enrichers share across streams in one process: the settings, and resources
    that are expensive to open (an .mmdb reader, the UA parser, a rates file), each built
    once on first use by `shared`."""

    settings: Settings
    _resources: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, compare=False, repr=False)

    def shared(self, key: str, make: Callable[[], T]) -> T:
        with self._lock:
            if key not in self._resources:
                self._resources[key] = make()
            resource: T = self._resources[key]
            return resource

    def close(self) -> None:
        """Close what `shared` opened (the .mmdb readers)."""
        with self._lock:
            resources = list(self._resources.values())
            self._resources.clear()
        for resource in resources:
            close = getattr(resource, "close", None)
            if callable(close):
                close()


class EnricherOptions(BaseModel):
    """Options of an enricher: unknown keys are refused when the stream is saved."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Enricher(abc.ABC):
    name: ClassVar[str]
    version: ClassVar[int]
    description: ClassVar[str]
    Options: ClassVar[type[BaseModel]] = EnricherOptions

    def __init__(self, options: BaseModel, env: EnricherEnv) -> None:
        self.options = options
        self.env = env

    @abc.abstractmethod
    def inputs(self) -> list[str]:
        """The columns it reads; one missing from a batch is read as all null."""

    @abc.abstractmethod
    def outputs(self) -> list[OutputColumn]:
        """The columns it adds (or replaces), in order."""

    @abc.abstractmethod
    def apply(self, table: pa.Table) -> dict[str, pa.Array]:
        """The added columns, each as long as `table`. Sync and vectorised: it runs in the
        flush thread. The same rows (and state) always give the same values."""

    async def load(self, database: Database, scope: StreamScope, table: pa.Table) -> None:
        """Before `apply`: read the state this batch needs (stateful enrichers only),
        outside any transaction (`database.read_in_thread` keeps a long read off the
        event loop)."""
        return None

    async def save(self, session: AsyncSession, scope: StreamScope) -> None:
        """After `apply`, in the flush transaction: write the new state."""
        return None

    def committed(self) -> None:
        """The flush transaction committed: adopt the new state."""
        return None

    def discarded(self) -> None:
        """The flush failed: forget the state `apply` computed; the batch comes again."""
        return None


_REGISTRY: dict[str, type[Enricher]] = {}
_loaded = False
_load_lock = threading.Lock()

E = TypeVar("E", bound=type[Enricher])


def register(enricher: E) -> E:
    """Add an enricher class to the registry under its `name` (a later one of the same
    name replaces it: a plugin may override a built-in)."""
    for attribute in ("name", "version", "description"):
        if not isinstance(getattr(enricher, attribute, None), str | int):
            raise TypeError(f"enricher {enricher.__qualname__} has no {attribute}")
    _REGISTRY[enricher.name] = enricher
    return enricher


def _load() -> None:
    global _loaded
    if _loaded:
        return
    with _load_lock:
        if _loaded:
            return
        for module in BUILTIN_MODULES:
            importlib.import_module(module)
        for entry in entry_points(group=ENTRY_POINT_GROUP):
            try:
                entry.load()
            except Exception:  # one broken plugin must not take the server down
                logger.exception("enricher plugin %s failed to load", entry.name)
        _loaded = True


def get(name: str) -> type[Enricher]:
    """The enricher class called `name`; KeyError when there is none."""
    _load()
    return _REGISTRY[name]


def registered() -> list[type[Enricher]]:
    _load()
    return sorted(_REGISTRY.values(), key=lambda enricher: enricher.name)


def validate_options(name: str, options: Mapping[str, Any] | None) -> BaseModel:
    """An enricher's options, checked: BadRequest names the enricher and the bad option."""
    try:
        enricher = get(name)
    except KeyError:
        known = ", ".join(e.name for e in registered())
        raise BadRequest(f"unknown enricher '{name}' (known: {known})") from None
    if options is not None and not isinstance(options, Mapping):
        raise BadRequest(f"enricher '{name}': options must be an object")
    try:
        return enricher.Options.model_validate(dict(options or {}))
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in ("options", *first["loc"]))
        message = first["msg"]
        if first["type"] == "extra_forbidden":
            message = "unknown option"
        raise BadRequest(f"enricher '{name}': {where}: {message}") from None


def build(name: str, options: Mapping[str, Any] | None, env: EnricherEnv) -> Enricher:
    """An enricher ready to run: options validated (BadRequest with a clear message)."""
    checked = validate_options(name, options)
    try:
        return get(name)(checked, env)
    except ValueError as error:  # what a constructor finds wrong with its configuration
        raise BadRequest(f"enricher '{name}': {error}") from None


# One event with what the built-ins read, for `warm_up`.
_SAMPLE = {
    "url": "https://www.example.co.uk/a?utm_source=news",
    "referrer": "https://www.google.com/",
    "user_agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like "
    "Gecko) Chrome/120.0.0.0 Safari/537.36",
    "ip": "8.8.8.8",
    "amount": "12.50",
    "currency": "EUR",
    "phone": "+14155552671",
    "email": "info@example.com",
}


def warm_up(env: EnricherEnv) -> None:
    """Import every enricher and build what each builds on first use (parsers, suffix
    lists, lookup tables), on one sample event. A server calls it at startup, before it
    freezes its startup objects out of the collector's reach: built later, on the first
    flush, those hundreds of thousands of objects made every full collection stall the
    event loop for 50-150 ms (measured with the clickstream template). Stateless ones
    only (stateful ones would need a stream); blocks: call it in a thread."""
    table = pa.table({name: [value] for name, value in _SAMPLE.items()})
    for enricher in registered():
        try:
            built = build(enricher.name, None, env)
        except BadRequest:  # needs options to be built (e.g. which identifier)
            continue
        if type(built).load is not Enricher.load:
            continue
        try:
            built.apply(table)
        except Exception:  # a plugin's failure here must not stop the server
            logger.exception("warming up enricher %s failed", enricher.name)
