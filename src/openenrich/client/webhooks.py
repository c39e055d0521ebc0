"""Checking a webhook's signature on the receiving side (Standard Webhooks)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Mapping

from openenrich.client.errors import OpenEnrichError


class InvalidSignature(OpenEnrichError):
    """A webhook that this secret did not sign, or signed too long ago."""


def verify_signature(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance_seconds: int = 300,
    now: float | None = None,
) -> None:
    """Raise InvalidSignature unless `body` came with a signature made with `secret` (the
    endpoint's `whsec_…`) less than `tolerance_seconds` ago. `headers` are the request's,
    in any case.

        verify_signature(secret, request.headers, await request.body())
    """
    lower = {name.lower(): value for name, value in headers.items()}
    message_id = lower.get("webhook-id")
    timestamp = lower.get("webhook-timestamp")
    signatures = lower.get("webhook-signature")
    if not (message_id and timestamp and signatures):
        raise InvalidSignature("webhook-id, webhook-timestamp and webhook-signature are needed")
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise InvalidSignature("webhook-timestamp is not a number") from None
    if abs((time.time() if now is None else now) - sent_at) > tolerance_seconds:
        raise InvalidSignature("the webhook's timestamp is too far from now")
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{sent_at}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    for candidate in signatures.split():
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            return
    raise InvalidSignature("no signature matches this secret")
