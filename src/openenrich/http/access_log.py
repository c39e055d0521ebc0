"""One line per request: method, path, status, duration and the key's public prefix.

The path is logged without its query string (a report link's signature is in it), and the
key only by the prefix the key list shows (`sk_live_ab12…`), never whole. Written by
`middleware.MetricsMiddleware`, which already sees each request's status and duration.
"""

from __future__ import annotations

import logging

from starlette.types import Scope

logger = logging.getLogger("openenrich.access")


def log_request(scope: Scope, status: int, elapsed: float) -> None:
    principal = scope.get("state", {}).get("principal")
    prefix = getattr(principal, "key_prefix", None)
    duration_ms = round(elapsed * 1000, 1)
    method, path = scope["method"], scope["path"]
    logger.info(
        "%s %s %d %.1fms %s",
        method,
        path,
        status,
        duration_ms,
        prefix or "-",
        extra={
            "method": method,
            "path": path,
            "status": status,
            "duration_ms": duration_ms,
            "key_prefix": prefix,
        },
    )
