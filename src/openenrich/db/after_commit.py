"""Work that must wait until a session's transaction is committed.

A service never commits; the request or job boundary does. What depends on the commit
having happened (dropping a cached copy of a row, say) registers here and runs right
after it, in the committing task; a rollback forgets it.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

_KEY = "openenrich_after_commit"


def after_commit(session: AsyncSession, callback: Callable[[], None]) -> None:
    """Call `callback` once this session's current transaction commits. It runs inside
    SQLAlchemy's commit: keep it quick, and let it not raise. A rollback to a savepoint
    keeps the callbacks registered since: make them harmless to run needlessly (dropping
    a cached copy is)."""
    session.info.setdefault(_KEY, []).append(callback)


@event.listens_for(Session, "after_commit")
def _run(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint released: the transaction may still roll back
    for callback in session.info.pop(_KEY, ()):
        callback()


@event.listens_for(Session, "after_soft_rollback")
def _forget(session: Session, previous_transaction: SessionTransaction) -> None:
    if previous_transaction.parent is None:
        session.info.pop(_KEY, None)
