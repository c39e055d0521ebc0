"""HTTP for lead pipelines (/v1/…). Errors: `{"error": "message", …}` (errors.render).

Routes parse, make one service call and answer; the services are a module per concern.
"""

from __future__ import annotations

from fastapi import APIRouter

from openenrich.http.routing import JSONRoute

router = APIRouter(prefix="/v1", tags=["lead pipelines"], route_class=JSONRoute)
