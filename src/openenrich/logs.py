"""Logging for `serve` and `worker`: plain lines, or one JSON object per line when
`OPENENRICH_LOG_FORMAT=json` (for a log shipper). Keys and request bodies are never logged:
a request's line names its key by its public prefix only."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import orjson

from openenrich.config import Settings

# What `logging` puts on every record; anything else on a record was passed as `extra=`.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JSONFormatter(logging.Formatter):
    """`{"time", "level", "logger", "message", …extra}`, one line per record."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update((k, v) for k, v in record.__dict__.items() if k not in _STANDARD)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


def configure(settings: Settings) -> None:
    """The root logger as the settings say, for the whole process (uvicorn's too)."""
    handler = logging.StreamHandler()
    if settings.log_format == "json":
        handler.setFormatter(JSONFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []  # through the root handler, formatted alike
        logging.getLogger(name).propagate = True


def uvicorn_log_config() -> dict[str, Any]:
    """Leaves uvicorn's loggers to `configure` (uvicorn would install its own handlers)."""
    return {"version": 1, "disable_existing_loggers": False}
