"""Tenants' provider keys: stored encrypted, shown by prefix only, never logged.

A call uses the tenant's own key for the provider, else the server-wide one from settings
(`OPENENRICH_PROVIDER_<NAME>_API_KEY` / `_BASE_URL`). Work that needs a provider with
neither is refused up front: `No API key found for <NAME>`.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import ColumnElement, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from openenrich.config import Settings
from openenrich.errors import BadRequest, NotFound
from openenrich.ids import new_id, utcnow
from openenrich.llm.models import ProviderKey
from openenrich.secretbox import InvalidToken, SecretBox
from openenrich.tenancy.tenant import Tenant
from openenrich.web.guard import UnsafeURL, resolve_public

FIRECRAWL = "FIRECRAWL"


class MissingProviderKey(BadRequest):
    code = "missing_provider_key"

    def __init__(self, key_name: str) -> None:
        super().__init__(f"No API key found for {key_name}")
        self.key_name = key_name


@dataclass(frozen=True, slots=True)
class Credentials:
    api_key: str | None
    base_url: str | None
    source: str  # "tenant" or "server"


def display_prefix(api_key: str) -> str:
    """Enough of a key to recognise it, never enough to use it."""
    return api_key[: min(8, len(api_key) // 3)] + "…" if api_key else ""


async def check_base_url(
    base_url: str, *, allow_private: bool, allowed_hosts: Collection[str]
) -> str:
    """A base URL a tenant stores is a user-given URL, like a webhook's: it is held to the
    SSRF guard's rules when it is stored (resolving its host, as webhook URLs are), so the
    refusal names its reason now instead of at the first call. The gateway checks it again
    whenever it makes a client: DNS answers change, and so do the operator's settings."""
    try:
        await resolve_public(
            base_url, allow_private=allow_private, allowed_hosts=allowed_hosts, https_only=False
        )
    except UnsafeURL as error:
        raise BadRequest(f"base_url: {error}") from None
    return base_url.rstrip("/")


async def put_key(
    session: AsyncSession,
    box: SecretBox,
    tenant: Tenant,
    key_name: str,
    api_key: str,
    base_url: str | None,
    *,
    allow_private: bool,
    allowed_hosts: Collection[str] = (),
) -> ProviderKey:
    """Store (or replace) `tenant`'s key; `allow_private` and `allowed_hosts` are the
    operator's OPENENRICH_ALLOW_PRIVATE_URLS and OPENENRICH_ALLOWED_PRIVATE_HOSTS."""
    if base_url:
        base_url = await check_base_url(
            base_url, allow_private=allow_private, allowed_hosts=allowed_hosts
        )
    row = await _find(session, tenant, key_name)
    now = utcnow()
    if row is None:
        row = ProviderKey(
            id=new_id("pk"),
            org_id=tenant.org_id,
            environment=tenant.environment.value,
            provider=key_name,
            created_at=now,
        )
        session.add(row)
    row.encrypted_key = box.seal(api_key) if api_key else ""
    row.key_prefix = display_prefix(api_key)
    row.base_url = base_url or None
    row.updated_at = now
    await session.flush()
    return row


async def list_keys(session: AsyncSession, tenant: Tenant) -> list[ProviderKey]:
    rows = await session.scalars(
        select(ProviderKey).where(*_of(tenant)).order_by(ProviderKey.provider)
    )
    return list(rows)


async def delete_key(session: AsyncSession, tenant: Tenant, key_name: str) -> None:
    result = await session.execute(
        delete(ProviderKey).where(*_of(tenant), ProviderKey.provider == key_name)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        raise NotFound(f"No API key stored for {key_name}")


async def credentials(
    session: AsyncSession,
    box: SecretBox,
    settings: Settings,
    tenant: Tenant,
    key_name: str,
    *,
    needs_key: bool = True,
) -> Credentials:
    """The key and base URL a call for `tenant` uses; MissingProviderKey when there is none.

    `needs_key=False` is for OpenAI-compatible servers, which may need only a base URL."""
    row = await _find(session, tenant, key_name)
    if row is not None:
        try:
            api_key = box.open(row.encrypted_key) if row.encrypted_key else None
        except InvalidToken:
            raise BadRequest(
                f"The stored API key for {key_name} cannot be decrypted (the server's secret "
                "key changed); store it again"
            ) from None
        if api_key or (not needs_key and row.base_url):
            return Credentials(api_key, row.base_url, "tenant")
    api_key, base_url = settings.provider_fallback(key_name)
    if api_key or (not needs_key and base_url):
        return Credentials(api_key, base_url, "server")
    raise MissingProviderKey(key_name)


async def own_credentials(
    session: AsyncSession, box: SecretBox, tenant: Tenant, key_name: str, base_url: str
) -> Credentials:
    """For a call to `base_url`, a server the tenant named for this one call: the tenant's
    own key for the provider, or none. Never the server-wide key: an operator's secret must
    not be sent to a URL a tenant chose."""
    row = await _find(session, tenant, key_name)
    api_key = None
    if row is not None and row.encrypted_key:
        try:
            api_key = box.open(row.encrypted_key)
        except InvalidToken:
            api_key = None  # the server's secret changed: as if no key were stored
    return Credentials(api_key, base_url, "tenant")


async def _find(session: AsyncSession, tenant: Tenant, key_name: str) -> ProviderKey | None:
    result: ProviderKey | None = await session.scalar(
        select(ProviderKey).where(*_of(tenant), ProviderKey.provider == key_name)
    )
    return result


def _of(tenant: Tenant) -> tuple[ColumnElement[bool], ...]:
    """Rows of this tenant only: another tenant's key is simply not found."""
    return (tenant.owns(ProviderKey),)
