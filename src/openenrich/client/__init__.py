"""A typed Python client of OpenEnrich's public HTTP API, sync (`Client`) and asyncio
(`AsyncClient`). See docs/client.md."""

from openenrich.client.aio import AsyncClient
from openenrich.client.core import Event, IngestResult, Retries
from openenrich.client.errors import (
    APIError,
    Conflict,
    ConnectionFailed,
    Forbidden,
    InvalidRequest,
    NotFound,
    OpenEnrichError,
    PaymentRequired,
    RateLimited,
    ServerError,
    Unauthorized,
)
from openenrich.client.sync import Client
from openenrich.client.webhooks import InvalidSignature, verify_signature

__all__ = [
    "APIError",
    "AsyncClient",
    "Client",
    "Conflict",
    "ConnectionFailed",
    "Event",
    "Forbidden",
    "IngestResult",
    "InvalidRequest",
    "InvalidSignature",
    "NotFound",
    "OpenEnrichError",
    "PaymentRequired",
    "RateLimited",
    "Retries",
    "ServerError",
    "Unauthorized",
    "verify_signature",
]
