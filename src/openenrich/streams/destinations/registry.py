"""The registry of destination types: each type is a sender class registered under its
name, the way a plugin would register one:

    @register("http")
    class HttpSender(Sender[HttpConfig]):
        config = HttpConfig          # pydantic, extra="forbid": what a destination stores
        secret_fields = ("signing_secret",)
        async def send(self, chunk: Chunk) -> None: ...   # raises DeliveryFailed

A sender is built per delivery from the destination's config (secrets included) and the
process's `SendContext` (its guarded HTTP client and the SSRF guard's settings).
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

import httpx
import orjson
import pyarrow as pa
from pydantic import BaseModel

ConfigT = TypeVar("ConfigT", bound=BaseModel)


class DeliveryFailed(Exception):
    """The receiver did not take the chunk (down, refused, answered an error): retry later.
    `retry_after` is the receiver's own hint, in seconds, when it gave one."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class SendContext:
    http: httpx.AsyncClient  # a guarded client: every connection passes the SSRF guard
    allow_private: bool
    allowed_hosts: Collection[str]
    timeout: float


@dataclass(frozen=True, slots=True)
class Chunk:
    """Rows to send in one request. `chunk_id` is the same every time these rows are sent
    (a retry, or a redelivery after a crash): receivers dedupe on it."""

    destination_id: str
    stream_id: str
    chunk_id: str
    table: pa.Table

    def events(self) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = self.table.to_pylist()
        return events


def _json_default(value: object) -> object:
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def dumps(value: object) -> bytes:
    """JSON for receivers: timestamps as RFC 3339, decimals as strings."""
    return orjson.dumps(value, default=_json_default, option=orjson.OPT_NON_STR_KEYS)


class Sender(Generic[ConfigT]):
    config: ClassVar[type[BaseModel]]
    # Fields of `config` that are secrets: kept sealed, never shown back.
    secret_fields: ClassVar[tuple[str, ...]] = ()
    # A secret the server makes at creation (returned once), not one the user gives.
    generated_secret: ClassVar[str | None] = None

    def __init__(self, settings: ConfigT, context: SendContext) -> None:
        self.settings = settings
        self.context = context

    @classmethod
    def urls(cls, settings: ConfigT) -> list[str]:
        """The http(s) URLs it will call, each checked by the SSRF guard at save time."""
        return []

    @classmethod
    def hosts(cls, settings: ConfigT) -> list[tuple[str, int]]:
        """Raw (host, port) pairs it connects to (syslog), checked the same way."""
        return []

    async def send(self, chunk: Chunk) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        """Release what `send` opened (connections); called after each delivery."""


SENDERS: dict[str, type[Sender[Any]]] = {}


def register(name: str) -> Callable[[type[Sender[Any]]], type[Sender[Any]]]:
    def add(sender: type[Sender[Any]]) -> type[Sender[Any]]:
        if name in SENDERS:
            raise ValueError(f"a destination type {name!r} is registered already")
        SENDERS[name] = sender
        return sender

    return add
