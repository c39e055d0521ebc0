"""Signed report URLs: `report_url` is a link anyone holding it may download the PDF with,
for a short while.

When a run's report is written, the run keeps a random token of its own, the server's
public address and the link's lifetime (`report_link`). Each read of the run mints a fresh
URL from them: `{base}/api/v1/runs/{id}/report.pdf?expires={unix}&signature={hmac}`, the
HMAC-SHA256 of the run id and the expiry under the run's token. The download route checks
the signature (in constant time) and the expiry, and answers 403 to a tampered or expired
link; a token per run means no server-wide key to share between processes or to rotate.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping
from typing import Any

from openenrich.config import Settings


def new_link(settings: Settings) -> dict[str, Any]:
    """What a run keeps to mint its report URLs."""
    base = settings.public_url or f"http://{settings.host}:{settings.port}"
    return {
        "base": base.rstrip("/"),
        "token": secrets.token_hex(32),
        "seconds": settings.verify_report_url_seconds,
    }


def _signature(token: str, run_id: str, expires: int) -> str:
    message = f"{run_id}.{expires}".encode()
    return hmac.new(bytes.fromhex(token), message, hashlib.sha256).hexdigest()


def report_url(link: Mapping[str, Any] | None, run_id: str, now: float | None = None) -> str | None:
    if not link:
        return None
    expires = int((time.time() if now is None else now) + int(link["seconds"]))
    signature = _signature(str(link["token"]), run_id, expires)
    return f"{link['base']}/api/v1/runs/{run_id}/report.pdf?expires={expires}&signature={signature}"


def is_valid(
    link: Mapping[str, Any] | None,
    run_id: str,
    expires: str,
    signature: str,
    now: float | None = None,
) -> bool:
    """The link's signature is the run's and it has not expired."""
    if not link or not expires.isdigit() or len(expires) > 12:
        return False
    expected = _signature(str(link["token"]), run_id, int(expires))
    fresh = int(expires) > (time.time() if now is None else now)
    return hmac.compare_digest(expected, signature) and fresh
