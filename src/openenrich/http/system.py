"""Routes that belong to no surface: health, metrics."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from sqlalchemy import text
from starlette.responses import Response

from openenrich import __version__
from openenrich.http.metrics import HttpMetrics
from openenrich.http.responses import JSONBody
from openenrich.http.routing import JSONRoute
from openenrich.http.session import database
from openenrich.http.state import app_state
from openenrich.ids import utcnow
from openenrich.json_output import Timestamp

router = APIRouter(tags=["system"], route_class=JSONRoute)


class Health(BaseModel):
    status: Literal["ok", "error"]
    timestamp: Timestamp
    version: str


@router.get(
    "/health",
    summary="Liveness and database reachability (no authentication)",
    response_model=Health,
    responses={503: {"model": Health, "description": "The database cannot be reached"}},
)
async def health(request: Request) -> JSONBody:
    status: Literal["ok", "error"] = "ok"
    code = 200
    try:
        await database(request).read(lambda connection: connection.execute(text("SELECT 1")))
    except Exception:  # the answer is the report: any failure means "not healthy"
        status, code = "error", 503
    body = Health(status=status, timestamp=utcnow(), version=__version__)
    return JSONBody(body, status_code=code)


@router.get(
    "/metrics",
    summary="Prometheus metrics (text exposition format)",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
)
async def metrics(request: Request) -> Response:
    payload = generate_latest(app_state(request).get(HttpMetrics).registry)
    return Response(payload, media_type=CONTENT_TYPE_LATEST)
