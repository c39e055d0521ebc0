"""The built-in destination types, registered as a plugin would register its own.

Each is at-least-once: a chunk is sent again after a failure or a crash between sending
and recording, under the same id, so receivers can drop the repeat: the http type's
`webhook-id` header and `batch_id`, Elasticsearch's `_id` (the event's `_event_id`), the S3
object name. Splunk HEC and syslog have no such key: a repeat there is a duplicate.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import re
import socket
import time
from typing import Any, ClassVar, Literal

import httpx
import orjson
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field, field_validator

from openenrich.streams.destinations.registry import (
    Chunk,
    DeliveryFailed,
    Sender,
    dumps,
    register,
)
from openenrich.web.guard import UnsafeURL, resolve, resolve_public
from openenrich.webhooks import signing
from openenrich.webhooks.dispatcher import retry_after


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _event_time(event: dict[str, Any]) -> dt.datetime | None:
    for field in ("_ingested_at", "timestamp", "ts"):
        value = event.get(field)
        if isinstance(value, dt.datetime):
            return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return None


async def _post(sender: Sender[Any], url: str, body: bytes, headers: dict[str, str]) -> bytes:
    """POST through the guarded client; a refusal, a transport error or a non-2xx answer
    is a DeliveryFailed."""
    try:
        response = await sender.context.http.post(url, content=body, headers=headers)
    except UnsafeURL as refused:
        raise DeliveryFailed(f"refused by the SSRF guard: {refused}") from None
    except httpx.TimeoutException:
        raise DeliveryFailed(f"no answer within {sender.context.timeout:g} s") from None
    except httpx.HTTPError as failed:
        raise DeliveryFailed(f"{type(failed).__name__}: {failed}") from None
    if not 200 <= response.status_code < 300:
        raise DeliveryFailed(
            f"the receiver answered {response.status_code}: {response.text[:200]}",
            retry_after=retry_after(response),
        )
    return response.content


# -- http ----------------------------------------------------------------------------------

_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}")
_BAD_HEADER_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_OURS = {
    "content-type",
    "content-length",
    "host",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
}


class HttpConfig(_Config):
    url: str = Field(max_length=2048)
    # Added to every request; kept sealed like the other secrets (they often carry a token).
    headers: dict[str, str] = Field(default_factory=dict, max_length=20)
    signing_secret: str | None = None  # generated at creation; never given

    @field_validator("headers")
    @classmethod
    def _valid_headers(cls, headers: dict[str, str]) -> dict[str, str]:
        for name, value in headers.items():
            if not _HEADER_NAME.fullmatch(name) or _BAD_HEADER_VALUE.search(value):
                raise ValueError(f"{name!r} is not a valid header name and value")
            if name.lower() in _OURS:
                raise ValueError(f"{name!r} is set by the server")
        return headers


@register("http")
class HttpSender(Sender[HttpConfig]):
    """JSON batches, signed as our webhooks are (Standard Webhooks; webhook-id = batch id)."""

    config: ClassVar[type[BaseModel]] = HttpConfig
    secret_fields = ("headers", "signing_secret")
    generated_secret = "signing_secret"  # noqa: S105 (a field name)

    @classmethod
    def urls(cls, settings: HttpConfig) -> list[str]:
        return [settings.url]

    async def send(self, chunk: Chunk) -> None:
        body = dumps(
            {
                "destination": chunk.destination_id,
                "stream_id": chunk.stream_id,
                "batch_id": chunk.chunk_id,
                "events": chunk.events(),
            }
        )
        assert self.settings.signing_secret is not None
        headers = {
            **self.settings.headers,
            **signing.headers(self.settings.signing_secret, chunk.chunk_id, int(time.time()), body),
        }
        await _post(self, self.settings.url, body, headers)


# -- elasticsearch -------------------------------------------------------------------------


class ElasticsearchConfig(_Config):
    url: str = Field(max_length=2048, description="The cluster's base URL")
    index: str = Field(min_length=1, max_length=255)
    api_key: str | None = None
    username: str | None = None
    password: str | None = None


@register("elasticsearch")
class ElasticsearchSender(Sender[ElasticsearchConfig]):
    """The `_bulk` API (OpenSearch too). `_id` = `_event_id`: a repeat overwrites."""

    config: ClassVar[type[BaseModel]] = ElasticsearchConfig
    secret_fields = ("api_key", "password")

    @classmethod
    def urls(cls, settings: ElasticsearchConfig) -> list[str]:
        return [settings.url]

    async def send(self, chunk: Chunk) -> None:
        lines: list[bytes] = []
        for position, event in enumerate(chunk.events()):
            event_id = event.get("_event_id") or f"{chunk.chunk_id}-{position}"
            action = {"index": {"_index": self.settings.index, "_id": str(event_id)}}
            lines.append(orjson.dumps(action))
            lines.append(dumps(event))
        headers = {"content-type": "application/x-ndjson"}
        if self.settings.api_key:
            headers["authorization"] = f"ApiKey {self.settings.api_key}"
        elif self.settings.username is not None:
            pair = f"{self.settings.username}:{self.settings.password or ''}".encode()
            headers["authorization"] = "Basic " + base64.b64encode(pair).decode()
        answer = await _post(
            self, self.settings.url.rstrip("/") + "/_bulk", b"\n".join(lines) + b"\n", headers
        )
        try:
            result = orjson.loads(answer)
        except orjson.JSONDecodeError:
            raise DeliveryFailed("the _bulk answer is not JSON") from None
        if not isinstance(result, dict) or not result.get("errors"):
            return
        failed = [
            outcome
            for item in result.get("items", [])
            for outcome in item.values()
            if isinstance(outcome, dict) and int(outcome.get("status", 500)) >= 300
        ]
        first = failed[0].get("error") if failed else None
        reason = first.get("reason") if isinstance(first, dict) else first
        # The whole chunk is sent again: with the same _ids, the items that did succeed are
        # overwritten with themselves.
        raise DeliveryFailed(
            f"{len(failed) or 'some'} of {len(chunk.table)} item(s) failed in _bulk: {reason}"
        )


# -- splunk_hec ----------------------------------------------------------------------------


class SplunkConfig(_Config):
    url: str = Field(max_length=2048, description="The HEC base URL, e.g. https://splunk:8088")
    token: str = Field(min_length=1)
    sourcetype: str | None = None
    index: str | None = None
    source: str | None = None


@register("splunk_hec")
class SplunkSender(Sender[SplunkConfig]):
    """POST /services/collector/event: one JSON object per event, concatenated."""

    config: ClassVar[type[BaseModel]] = SplunkConfig
    secret_fields = ("token",)

    @classmethod
    def urls(cls, settings: SplunkConfig) -> list[str]:
        return [settings.url]

    async def send(self, chunk: Chunk) -> None:
        meta = {
            key: value
            for key, value in (
                ("sourcetype", self.settings.sourcetype),
                ("index", self.settings.index),
                ("source", self.settings.source or chunk.stream_id),
            )
            if value is not None
        }
        parts: list[bytes] = []
        for event in chunk.events():
            item: dict[str, Any] = {"event": event, **meta}
            moment = _event_time(event)
            if moment is not None:
                item["time"] = round(moment.timestamp(), 6)
            parts.append(dumps(item))
        answer = await _post(
            self,
            self.settings.url.rstrip("/") + "/services/collector/event",
            b"\n".join(parts),
            {"authorization": f"Splunk {self.settings.token}", "content-type": "application/json"},
        )
        try:
            code = orjson.loads(answer).get("code", 0)
        except (orjson.JSONDecodeError, AttributeError):
            code = 0  # a 2xx is success; the body is a courtesy
        if code != 0:
            raise DeliveryFailed(f"Splunk HEC answered code {code}")


# -- syslog --------------------------------------------------------------------------------

FACILITIES = {
    name: number
    for number, name in enumerate(
        [
            "kern",
            "user",
            "mail",
            "daemon",
            "auth",
            "syslog",
            "lpr",
            "news",
            "uucp",
            "cron",
            "authpriv",
            "ftp",
            "ntp",
            "security",
            "console",
            "solaris-cron",
            "local0",
            "local1",
            "local2",
            "local3",
            "local4",
            "local5",
            "local6",
            "local7",
        ]
    )
}
_PRINTABLE = re.compile(r"[^\x21-\x7e]")
_INFORMATIONAL = 6


class SyslogConfig(_Config):
    host: str = Field(min_length=1, max_length=253)
    port: int = Field(default=514, ge=1, le=65535)
    protocol: Literal["tcp", "udp"] = "tcp"
    facility: Literal[tuple(FACILITIES)] = "user"  # type: ignore[valid-type]
    app_name: str = Field(default="openenrich", min_length=1, max_length=48)
    hostname: str = Field(default="-", min_length=1, max_length=255)


def _header_field(value: str, limit: int) -> str:
    return _PRINTABLE.sub("_", value)[:limit] or "-"


def syslog_message(settings: SyslogConfig, stream_id: str, event: dict[str, Any]) -> bytes:
    """One RFC 5424 message: the event as JSON in MSG, the stream as MSGID."""
    priority = FACILITIES[settings.facility] * 8 + _INFORMATIONAL
    moment = _event_time(event)
    stamp = (
        moment.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
        if moment
        else "-"
    )
    header = (
        f"<{priority}>1 {stamp} {_header_field(settings.hostname, 255)} "
        f"{_header_field(settings.app_name, 48)} - {_header_field(stream_id, 32)} -"
    )
    return header.encode() + b" " + dumps(event)


@register("syslog")
class SyslogSender(Sender[SyslogConfig]):
    """RFC 5424 over TCP (octet counting, RFC 6587) or UDP (one datagram per event; UDP has
    no acknowledgement: a datagram lost on the way is lost)."""

    config: ClassVar[type[BaseModel]] = SyslogConfig

    @classmethod
    def hosts(cls, settings: SyslogConfig) -> list[tuple[str, int]]:
        return [(settings.host, settings.port)]

    async def send(self, chunk: Chunk) -> None:
        settings = self.settings
        try:
            addresses = await resolve(
                settings.host,
                settings.port,
                allow_private=self.context.allow_private,
                allowed_hosts=self.context.allowed_hosts,
            )
        except UnsafeURL as refused:
            raise DeliveryFailed(f"refused by the SSRF guard: {refused}") from None
        messages = [syslog_message(settings, chunk.stream_id, e) for e in chunk.events()]
        try:
            async with asyncio.timeout(self.context.timeout):
                if settings.protocol == "tcp":
                    await self._tcp(addresses[0], messages)
                else:
                    await self._udp(addresses[0], messages)
        except TimeoutError:
            raise DeliveryFailed(f"no progress within {self.context.timeout:g} s") from None
        except OSError as failed:
            raise DeliveryFailed(f"{type(failed).__name__}: {failed}") from None

    async def _tcp(self, address: str, messages: list[bytes]) -> None:
        _, writer = await asyncio.open_connection(address, self.settings.port)
        try:
            writer.write(b"".join(b"%d %s" % (len(message), message) for message in messages))
            await writer.drain()
        finally:
            writer.close()
            await writer.wait_closed()

    async def _udp(self, address: str, messages: list[bytes]) -> None:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, remote_addr=(address, self.settings.port), family=family
        )
        try:
            for message in messages:
                transport.sendto(message)
                await asyncio.sleep(0)  # let the datagrams go out before closing
        finally:
            transport.close()


# -- s3 ------------------------------------------------------------------------------------


class S3Config(_Config):
    bucket: str = Field(min_length=3, max_length=63, pattern=r"^[a-z0-9][a-z0-9.\-]+$")
    prefix: str = Field(default="", max_length=512)
    format: Literal["parquet", "ndjson"] = "parquet"
    endpoint_url: str | None = Field(default=None, max_length=2048)
    region: str = "us-east-1"
    access_key_id: str | None = None
    secret_access_key: str | None = None


@register("s3")
class S3Sender(Sender[S3Config]):
    """One object per chunk, `{prefix}/{stream_id}/{chunk id}.parquet|.ndjson`: a redelivery
    overwrites the same object."""

    config: ClassVar[type[BaseModel]] = S3Config
    secret_fields = ("secret_access_key",)

    @classmethod
    def urls(cls, settings: S3Config) -> list[str]:
        return [settings.endpoint_url] if settings.endpoint_url else []

    def object_path(self, chunk: Chunk) -> str:
        suffix = "parquet" if self.settings.format == "parquet" else "ndjson"
        prefix = self.settings.prefix.strip("/")
        key = f"{chunk.stream_id}/{chunk.chunk_id}.{suffix}"
        return (
            f"{self.settings.bucket}/{prefix}/{key}" if prefix else f"{self.settings.bucket}/{key}"
        )

    async def send(self, chunk: Chunk) -> None:
        endpoint = self.settings.endpoint_url
        scheme = "https"
        if endpoint:
            # Checked again now (DNS answers change). pyarrow connects by name itself, so a
            # change between this check and its connection is not caught as it is for http.
            try:
                target = await resolve_public(
                    endpoint,
                    allow_private=self.context.allow_private,
                    allowed_hosts=self.context.allowed_hosts,
                )
            except UnsafeURL as refused:
                raise DeliveryFailed(f"refused by the SSRF guard: {refused}") from None
            scheme = target.scheme
        try:
            await asyncio.to_thread(self._write, chunk, endpoint, scheme)
        except OSError as failed:
            raise DeliveryFailed(f"S3: {failed}") from None

    def _write(self, chunk: Chunk, endpoint: str | None, scheme: str) -> None:
        netloc = endpoint.split("://", 1)[1].split("/", 1)[0] if endpoint else None
        filesystem = pafs.S3FileSystem(
            access_key=self.settings.access_key_id,
            secret_key=self.settings.secret_access_key,
            region=self.settings.region,
            endpoint_override=netloc,
            scheme=scheme,
            connect_timeout=self.context.timeout,
            request_timeout=self.context.timeout,
            retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=2),
        )
        path = self.object_path(chunk)
        if self.settings.format == "parquet":
            pq.write_table(chunk.table, path, filesystem=filesystem, compression="zstd")
            return
        body = b"".join(dumps(event) + b"\n" for event in chunk.events())
        with filesystem.open_output_stream(path) as target:
            target.write(body)
