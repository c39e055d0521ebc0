"""The request is the unit of work: one session, committed before the response is sent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from openenrich.db import Database
from openenrich.http.state import app_state


def database(request: Request) -> Database:
    db = app_state(request).database
    return db


async def request_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with database(request).session() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        await session.commit()


# scope="function": the commit runs before the response goes out, so what a 2xx
# acknowledges is already durable.
DbSession = Annotated[AsyncSession, Depends(request_session, scope="function")]
