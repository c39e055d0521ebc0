"""The pool's bookkeeping, with stand-in connections: who waits, who gets room, what is
closed. (The SMTP tests show the same limits against real servers.)"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from openenrich.email.pool import SmtpPool


class Link:
    """A connection as the pool sees one."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.usable = True
        self.closed = False
        self.quit_sent = False

    def close(self) -> None:
        self.usable = False
        self.closed = True

    async def quit(self) -> None:
        self.quit_sent = True
        self.close()


def opener(host: str) -> Callable[[], Awaitable[Link]]:
    async def connect() -> Link:
        await asyncio.sleep(0)
        return Link(host)

    return connect


async def use(pool: SmtpPool, host: str, hold: float = 0.0) -> Link:
    async with pool.lease(host, opener(host)) as lease:
        link = await lease.get()
        await asyncio.sleep(hold)
        return link


def test_an_idle_connection_is_reused() -> None:
    async def main() -> None:
        pool = SmtpPool(total=4, per_host=2)
        first = await use(pool, "mx.a.example")
        second = await use(pool, "mx.a.example")
        assert first is second
        assert pool.open_connections == 1
        await pool.close()
        assert first.quit_sent
        assert pool.open_connections == 0

    asyncio.run(main())


def test_a_connection_that_went_away_is_not_reused() -> None:
    async def main() -> None:
        pool = SmtpPool(total=4, per_host=2)
        first = await use(pool, "mx.a.example")
        first.usable = False  # the server hung up while it was idle
        second = await use(pool, "mx.a.example")
        assert second is not first
        assert first.closed
        assert pool.open_connections == 1

    asyncio.run(main())


def test_a_host_gets_no_more_than_its_share() -> None:
    async def main() -> None:
        pool = SmtpPool(total=10, per_host=2)
        links = await asyncio.gather(*(use(pool, "mx.a.example", 0.01) for _ in range(8)))
        assert len({id(link) for link in links}) == 2
        assert pool.open_connections == 2

    asyncio.run(main())


def test_room_is_made_by_closing_what_no_one_waits_for() -> None:
    async def main() -> None:
        pool = SmtpPool(total=1, per_host=1)
        a = await use(pool, "mx.a.example")  # idle now
        b = await use(pool, "mx.b.example")  # closes a's to make room
        assert a.closed
        assert not b.closed
        # b's lease holds the only connection while a's waits for room: b's is closed when
        # given back (no one else wants mx.b), and a opens its own.
        holding = asyncio.ensure_future(use(pool, "mx.b.example", hold=0.02))
        await asyncio.sleep(0.005)
        a2 = await use(pool, "mx.a.example")
        assert await holding is b
        assert b.closed
        assert not a2.closed
        assert pool.open_connections == 1

    asyncio.run(main())


def test_a_waiter_takes_a_connection_given_back_to_its_own_host() -> None:
    """Two leases of one host, room for one connection: the second waits for room, and
    takes the first's connection when it comes back (it must not wait for ever)."""

    async def main() -> None:
        pool = SmtpPool(total=1, per_host=2)
        first, second = await asyncio.wait_for(
            asyncio.gather(use(pool, "mx.a.example", 0.01), use(pool, "mx.a.example")), 2
        )
        assert first is second
        assert pool.open_connections == 1

    asyncio.run(main())


def test_a_cancelled_waiter_does_not_keep_the_room() -> None:
    async def main() -> None:
        pool = SmtpPool(total=1, per_host=1)
        holder = asyncio.ensure_future(use(pool, "mx.a.example", hold=0.05))
        await asyncio.sleep(0.01)
        cancelled = asyncio.ensure_future(use(pool, "mx.b.example"))
        waiting = asyncio.ensure_future(use(pool, "mx.c.example"))
        await asyncio.sleep(0.01)
        cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        link = await asyncio.wait_for(waiting, 2)
        await holder
        assert link.host == "mx.c.example"
        assert pool.open_connections == 1

    asyncio.run(main())


def test_a_failed_connect_gives_its_room_back() -> None:
    async def fail() -> Link:
        raise OSError("connection refused")

    async def main() -> None:
        pool = SmtpPool(total=1, per_host=1)
        with pytest.raises(OSError, match="refused"):
            async with pool.lease("mx.a.example", fail) as lease:
                await lease.get()
        assert pool.open_connections == 0
        assert (await use(pool, "mx.b.example")).host == "mx.b.example"

    asyncio.run(main())
