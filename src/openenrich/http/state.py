"""What the app holds for its requests: one typed object, one dependency to get it.

The app builds an `AppState` at startup with the settings and the database, and adds each
long-lived part (rate limiter, key cache, LLM gateway, jobs runtime, a surface's runtime)
under its type. A route asks for the part by type: `state.get(Gateway)` is a `Gateway` to
mypy too. Parts are found by type rather than named fields because this module is core:
it cannot name the platform's and surfaces' types without importing upwards.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

from fastapi import Request

from openenrich.config import Settings
from openenrich.db import Database

T = TypeVar("T")


class AppState:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._parts: dict[Callable[..., Any], object] = {}

    @property
    def database(self) -> Database:
        return self.get(Database)

    def add(self, part: T, kind: Callable[..., T] | None = None) -> T:
        """Hold `part`, found later by `kind` (its own type unless given, e.g. a base class
        or a protocol its callers know it by)."""
        self._parts[kind or type(part)] = part
        return part

    def get(self, kind: Callable[..., T]) -> T:
        # Callable rather than type[T]: a protocol or an abstract base is a kind too.
        try:
            return cast(T, self._parts[kind])
        except KeyError:
            raise LookupError(f"the app holds no {kind!r}; is the app started?") from None


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.openenrich
    return state
