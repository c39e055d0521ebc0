from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class CreateRun(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str = Field(min_length=1, max_length=20_000)
    workflow: str | None = Field(default=None, max_length=100)
    thread_id: str | None = Field(default=None, max_length=40)
    stream: bool = False
    metadata: dict[str, Any] | None = None


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["approved", "declined"]


class WorkflowBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slug: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9-]{0,99}$")
    name: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=1000)
    content: str | None = Field(default=None, max_length=50_000)
    is_active: bool | None = None
