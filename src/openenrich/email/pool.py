"""`SmtpPool`: the SMTP connections of a process, kept open for reuse, and how many there
may be: at most `email_probe_host_concurrency` to one MX host and
`email_probe_concurrency` in all.

One pool serves every run in the process (the `email` component puts it in the process's
parts), so concurrent validation jobs share both limits and each other's connections. A
connection is leased for one exchange (MAIL FROM and RCPT TO) and given back; an idle one
is reused by the next lease for its host. The limits count open connections, idle ones
included, since an open connection is what a mail server counts (and a file descriptor
here):

- a lease for a host waits while all of the host's connections are in use;
- a lease that finds no idle connection to its host opens one if the total has room; else
  it closes the oldest idle connection of a host no lease is waiting for, and else waits
  until a connection is given back: to its own host (it takes that one) or to a host no
  one else waits for (that one is closed to make room).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Generic, Protocol, TypeVar

from openenrich.config import Settings

# A connection idle longer than this is not reused: servers drop idle clients (Postfix
# after 300 s), and a dead connection costs a failed command before the new one.
MAX_IDLE_SECONDS = 60.0


class Connection(Protocol):
    @property
    def usable(self) -> bool: ...

    def close(self) -> None: ...

    async def quit(self) -> None: ...


C = TypeVar("C", bound=Connection)


class _Host:
    __slots__ = ("idle", "slots", "users")

    def __init__(self, per_host: int) -> None:
        self.slots = asyncio.Semaphore(per_host)  # connections in use
        self.idle: list[tuple[Connection, float]] = []  # newest last
        self.users = 0  # leases holding or waiting for a slot


class Lease(Generic[C]):
    """One of a host's slots, and the connection used in it."""

    def __init__(
        self, pool: SmtpPool, host: str, entry: _Host, connect: Callable[[], Awaitable[C]]
    ) -> None:
        self.connection: C | None = None
        self.reused = False  # the connection was idle: the server may have closed it since
        self._pool = pool
        self._host = host
        self._entry = entry
        self._connect = connect

    async def get(self) -> C:
        """The connection held, else an idle one to the host, else a new one."""
        if self.connection is None:
            idle = await self._pool._idle_or_room(self._host, self._entry)
            self.reused = idle is not None
            if idle is not None:
                self.connection = idle  # type: ignore[assignment]  # the host's: this C
            else:
                try:
                    self.connection = await self._connect()
                except BaseException:
                    self._pool._release()
                    raise
        assert self.connection is not None
        return self.connection

    def discard(self) -> None:
        """Close the connection held: it is broken, or in a state we cannot trust."""
        if self.connection is not None:
            self.connection.close()
            self.connection = None
            self._pool._release()


class SmtpPool:
    def __init__(self, total: int, per_host: int) -> None:
        self.total = total
        self.per_host = per_host
        self._open = 0  # connections open or being opened
        # Made on first use and dropped when unused, so the map does not grow with every
        # mail server the process ever met.
        self._hosts: dict[str, _Host] = {}
        self._idle: OrderedDict[Connection, str] = OrderedDict()  # oldest first
        self._waiting: deque[tuple[asyncio.Future[None], str]] = deque()  # leases, for room

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpPool:
        return cls(settings.email_probe_concurrency, settings.email_probe_host_concurrency)

    @property
    def open_connections(self) -> int:
        return self._open

    @contextlib.asynccontextmanager
    async def lease(
        self, host: str, connect: Callable[[], Awaitable[C]]
    ) -> AsyncIterator[Lease[C]]:
        entry = self._hosts.get(host)
        if entry is None:
            entry = self._hosts[host] = _Host(self.per_host)
        entry.users += 1
        try:
            async with entry.slots:
                lease = Lease(self, host, entry, connect)
                try:
                    yield lease
                finally:
                    if lease.connection is not None:
                        self._give_back(host, entry, lease.connection)
        finally:
            entry.users -= 1
            if entry.users == 0 and not entry.idle:
                del self._hosts[host]
            # Its host may need no more connections now: room for a lease waiting for it.
            if self._waiting and self._close_oldest_idle():
                self._wake()

    async def close(self) -> None:
        """QUIT every idle connection (those in use are closed by their leases)."""
        idle = list(self._idle)
        self._idle.clear()
        for host, entry in list(self._hosts.items()):
            entry.idle.clear()
            if entry.users == 0:
                del self._hosts[host]
        self._open -= len(idle)
        await asyncio.gather(*(connection.quit() for connection in idle))

    async def _idle_or_room(self, host: str, entry: _Host) -> Connection | None:
        """An idle connection to `host`, or None with room reserved for a new one."""
        while True:
            while entry.idle:
                connection, since = entry.idle.pop()
                del self._idle[connection]
                if connection.usable and time.monotonic() - since < MAX_IDLE_SECONDS:
                    return connection
                connection.close()
                self._open -= 1
            if self._open < self.total or self._close_oldest_idle():
                self._open += 1
                return None
            waiter = asyncio.get_running_loop().create_future()
            self._waiting.append((waiter, host))
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._wake()  # woken and cancelled at once: pass the turn on
                else:
                    self._waiting.remove((waiter, host))
                raise

    def _give_back(self, host: str, entry: _Host, connection: Connection) -> None:
        if not connection.usable:
            connection.close()
            self._release()
            return
        if self._waiting and entry.users <= 1:
            # Leases wait for room and no other lease wants this host: make room.
            connection.close()
            self._release()
            return
        entry.idle.append((connection, time.monotonic()))
        self._idle[connection] = host
        self._wake(host)  # a lease of this host waiting for room takes it

    def _release(self) -> None:
        self._open -= 1
        self._wake()

    def _wake(self, host: str | None = None) -> None:
        """Wake the first lease waiting for room (of `host`, if given)."""
        for waiting in self._waiting:
            waiter, for_host = waiting
            if not waiter.done() and (host is None or for_host == host):
                self._waiting.remove(waiting)
                waiter.set_result(None)
                return

    def _close_oldest_idle(self) -> bool:
        """Close the oldest idle connection of a host no lease is waiting for (one given
        back a moment ago may be on its way to a waiter); False if there is none."""
        found = next(
            ((idle, host) for idle, host in self._idle.items() if self._hosts[host].users == 0),
            None,
        )
        if found is None:
            return False
        candidate, host = found
        entry = self._hosts[host]
        del self._idle[candidate]
        entry.idle = [(c, since) for c, since in entry.idle if c is not candidate]
        if not entry.idle:
            del self._hosts[host]
        candidate.close()
        self._open -= 1
        return True
