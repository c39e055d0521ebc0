"""TEMPORARY stand-in for the enrichers registry (replaced by the enrichers branch)."""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import pyarrow as pa
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from openenrich.config import Settings
from openenrich.errors import BadRequest


@dataclass(frozen=True)
class OutputColumn:
    name: str
    type: str
    description: str


@dataclass(frozen=True)
class StreamScope:
    org_id: str
    environment: str
    stream_id: str


@dataclass(frozen=True)
class EnricherEnv:
    settings: Settings


class Enricher(abc.ABC):
    name: ClassVar[str]
    version: ClassVar[int]
    description: ClassVar[str]
    Options: ClassVar[type[BaseModel]]

    def __init__(self, options: BaseModel, env: EnricherEnv) -> None:
        self.options = options
        self.env = env

    @abc.abstractmethod
    def inputs(self) -> list[str]: ...

    @abc.abstractmethod
    def outputs(self) -> list[OutputColumn]: ...

    @abc.abstractmethod
    def apply(self, table: pa.Table) -> dict[str, pa.Array]: ...

    async def load(self, session: AsyncSession, scope: StreamScope, table: pa.Table) -> None:
        return None

    async def save(self, session: AsyncSession, scope: StreamScope) -> None:
        return None

    def committed(self) -> None:
        return None

    def discarded(self) -> None:
        return None


_REGISTRY: dict[str, type[Enricher]] = {}


def build(name: str, options: Mapping[str, Any] | None, env: EnricherEnv) -> Enricher:
    kind = _REGISTRY.get(name)
    if kind is None:
        raise BadRequest(f"unknown enricher '{name}'")
    return kind(kind.Options.model_validate(options or {}), env)
