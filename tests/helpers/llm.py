"""Running the LLM gateway in a test, on the test's database."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from openenrich.config import Settings
from openenrich.db import Database
from openenrich.llm.gateway import Gateway
from openenrich.secretbox import load_secret_box

T = TypeVar("T")


def with_gateway(settings: Settings, work: Callable[[Gateway], Awaitable[T]]) -> T:
    """Run `work` with a gateway on `settings`'s database; the call records are written."""

    async def main() -> T:
        database = Database.from_settings(settings)
        gateway = Gateway(settings, database, load_secret_box(settings))
        try:
            return await work(gateway)
        finally:
            await gateway.close()
            await database.dispose()

    return asyncio.run(main())
