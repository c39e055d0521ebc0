from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from openenrich.tenancy.roles import Environment, Role


class CreateApiKey(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="", max_length=100)
    role: Role = Role.MEMBER
    expires_in_days: int | None = Field(default=None, ge=1, le=3650)
    auto_approve: bool = False


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    prefix: str
    name: str
    role: Role
    environment: Environment
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    auto_approve: bool


class CreatedApiKey(ApiKeyOut):
    key: str = Field(description="The plaintext key. Shown once: it is not stored.")


class ApiKeyList(BaseModel):
    api_keys: list[ApiKeyOut]


class WhoAmI(BaseModel):
    organization: str
    environment: Environment
    role: Role
    key_prefix: str
    plan: str
