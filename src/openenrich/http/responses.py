from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel
from starlette.responses import JSONResponse

from openenrich.json_output import json_values


def _model_values(value: Any) -> Any:
    """What orjson cannot write itself: a response model, as its JSON values."""
    if isinstance(value, BaseModel):
        return json_values(value)
    raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")


class JSONBody(JSONResponse):
    """A JSON response serialised by orjson (datetimes, dataclasses and numpy included;
    a pydantic model as `json_output.json_values`)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, default=_model_values, option=orjson.OPT_NON_STR_KEYS)
