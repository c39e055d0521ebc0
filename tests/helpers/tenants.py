"""Organisations, keys and plans made through the tenancy service, as the CLI makes them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from openenrich.config import Settings
from openenrich.db import Database
from openenrich.tenancy import service
from openenrich.tenancy.roles import Environment, Role

T = TypeVar("T")


class Tenants:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def run(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        async def main() -> T:
            database = Database.from_settings(self.settings)
            try:
                async with database.session() as session:
                    result = await work(session)
                    await session.commit()
                    return result
            finally:
                await database.dispose()

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(main())
        # A loop already runs in this thread (Playwright's sync API keeps one): use another.
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, main()).result()

    def key(
        self,
        org: str = "acme",
        *,
        role: str = "admin",
        environment: str = "live",
        expires_in: timedelta | None = None,
    ) -> str:
        async def work(session: AsyncSession) -> str:
            organization = await service.ensure_organization(session, org)
            _key, plaintext = await service.create_key(
                session,
                organization,
                environment=Environment(environment),
                role=Role(role),
                expires_in=expires_in,
            )
            return plaintext

        return self.run(work)

    def plan(self, name: str, **changes: object) -> None:
        async def work(session: AsyncSession) -> None:
            await service.upsert_plan(session, name, service.PlanChanges(**changes))  # type: ignore[arg-type]

        self.run(work)

    def set_plan(self, org: str, plan: str) -> None:
        async def work(session: AsyncSession) -> None:
            await service.ensure_organization(session, org)
            await service.set_org_plan(session, org, plan)

        self.run(work)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
