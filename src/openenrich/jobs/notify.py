"""Waking whoever waits on a job: long-polls, event streams, idle workers.

A change is announced only once it is committed (an SQLAlchemy `after_commit` hook), so
a woken reader always finds it. Within a process the `JobHub` wakes waiters directly. On
PostgreSQL the change also sends `NOTIFY openenrich_jobs` in its transaction, and every
process LISTENs, so a waiter in another process wakes within milliseconds. On SQLite the
processes sharing a database share a machine: `LocalPeers` passes the keys over UNIX
datagram sockets. Either way, waiters also poll at `job_poll_seconds`, so a lost
wake-up only delays.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import secrets
import socket
import tempfile
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import event, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from openenrich.looping import BackgroundLoop

logger = logging.getLogger("openenrich.jobs")

CHANNEL = "openenrich_jobs"
NEW_WORK = "*"  # the wake-up for idle workers
_NOTIFY = text("SELECT pg_notify(:channel, :key)")
_KEYS_PER_DATAGRAM = 1000  # ~40 KB, under the default socket buffer
_RETRY_SECONDS = 0.005


class JobHub:
    def __init__(self) -> None:
        self._waiters: defaultdict[str, set[asyncio.Future[None]]] = defaultdict(set)
        self.peers: LocalPeers | None = None  # other processes on this machine (SQLite)

    def committed(self, keys: Iterable[str]) -> None:
        """Keys whose changes were just committed here: wake them here and in the peers."""
        keys = list(keys)
        for key in keys:
            self.wake(key)
        if self.peers is not None:
            self.peers.publish(keys)

    def wake(self, key: str) -> None:
        for waiter in self._waiters.pop(key, ()):
            if not waiter.done():
                waiter.set_result(None)

    def watch(self, key: str) -> asyncio.Future[None]:
        """A future woken with `key` from now on: register before looking, then `wait` on it,
        and a wake-up that comes while looking is not missed."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters[key].add(waiter)
        return waiter

    def unwatch(self, key: str, waiter: asyncio.Future[None]) -> None:
        waiters = self._waiters.get(key)
        if waiters is not None:
            waiters.discard(waiter)
            if not waiters:
                self._waiters.pop(key, None)

    async def wait(
        self, key: str, seconds: float, watched: asyncio.Future[None] | None = None
    ) -> bool:
        """Wait for `key` (a job id, or NEW_WORK) to be woken; False on timeout."""
        waiter = watched if watched is not None else self.watch(key)
        try:
            async with asyncio.timeout(seconds):
                await waiter
            return True
        except TimeoutError:
            return False
        finally:
            self.unwatch(key, waiter)


async def announce(session: AsyncSession, hub: JobHub, *keys: str) -> None:
    """Wake `keys` once this session commits (here, and in other processes on PostgreSQL)."""
    waking: set[str] = session.info.setdefault("openenrich_wake", set())
    new = [key for key in keys if key not in waking]
    waking.update(new)
    session.info["openenrich_hub"] = hub
    assert session.bind is not None
    if session.bind.dialect.name == "postgresql":
        for key in new:  # once per key and transaction
            await session.execute(_NOTIFY, {"channel": CHANNEL, "key": key})


@event.listens_for(Session, "after_commit")
def _wake_after_commit(session: Session) -> None:
    keys = session.info.pop("openenrich_wake", None)
    hub: JobHub | None = session.info.pop("openenrich_hub", None)
    if keys and hub is not None:
        hub.committed(keys)


@event.listens_for(Session, "after_rollback")
def _forget_on_rollback(session: Session) -> None:
    session.info.pop("openenrich_wake", None)
    session.info.pop("openenrich_hub", None)


class PostgresListener:
    """LISTENs on its own connection and wakes the hub for what other processes announce."""

    def __init__(self, url: URL, hub: JobHub) -> None:
        self._dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._hub = hub
        self._loop = BackgroundLoop(self._run, name="postgres-listener")

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def _run(self) -> None:
        delay = 0.5
        while True:
            try:
                connection: Any = await psycopg.AsyncConnection.connect(self._dsn, autocommit=True)
                async with connection:
                    await connection.execute(f"LISTEN {CHANNEL}")
                    delay = 0.5
                    async for notice in connection.notifies():
                        self._hub.wake(notice.payload)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("lost the LISTEN connection; reconnecting in %.1f s", delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)


class LocalPeers:
    """Wake-ups between the processes of one machine, for SQLite (which has no NOTIFY).

    Each process binds a UNIX datagram socket in a folder next to the database; after a
    commit it sends the keys it announced to every other socket there (microseconds, no
    database work). A socket whose process died is removed by the first sender to find it
    refusing. Wake-ups are hints: a waiter that misses one still polls.
    """

    def __init__(self, folder: Path, hub: JobHub) -> None:
        if len(str(folder)) > 80:  # socket paths are limited to ~108 bytes
            digest = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]
            folder = Path(tempfile.gettempdir()) / f"openenrich-wake-{digest}"
        self.folder = folder
        self._hub = hub
        self._socket: socket.socket | None = None
        self._path: Path | None = None
        self._peers: list[str] = []
        self._listed_at = -1
        self._pending: defaultdict[str, set[str]] = defaultdict(set)
        self._flush_scheduled = False

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._path = self.folder / f"{os.getpid()}-{secrets.token_hex(4)}.sock"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(str(self._path))
        sock.setblocking(False)
        self._socket = sock
        asyncio.get_running_loop().add_reader(sock.fileno(), self._receive)
        self._hub.peers = self

    def stop(self) -> None:
        self._hub.peers = None
        if self._socket is not None:
            asyncio.get_running_loop().remove_reader(self._socket.fileno())
            self._socket.close()
            self._socket = None
        if self._path is not None:
            self._path.unlink(missing_ok=True)

    def _receive(self) -> None:
        assert self._socket is not None
        while True:
            try:
                message = self._socket.recv(65536)
            except (BlockingIOError, InterruptedError):
                return
            for key in message.decode().split("\n"):
                self._hub.wake(key)

    def _current_peers(self) -> list[str]:
        # The folder's mtime changes when a socket appears or goes: list it only then.
        listed_at = os.stat(self.folder).st_mtime_ns
        if listed_at != self._listed_at:
            self._listed_at = listed_at
            mine = str(self._path)
            self._peers = [str(path) for path in self.folder.glob("*.sock") if str(path) != mine]
        return self._peers

    def publish(self, keys: Iterable[str]) -> None:
        """Queue `keys` for every peer; sent once per loop turn, so a burst of commits
        costs one datagram per peer rather than one per commit."""
        if self._socket is None:
            return
        peers = self._current_peers()
        if not peers:
            return
        keys = set(keys)
        for peer in peers:
            self._pending[peer] |= keys
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._socket is None:
            self._pending.clear()
            return
        for peer in list(self._pending):
            keys = sorted(self._pending.pop(peer))
            for start in range(0, len(keys), _KEYS_PER_DATAGRAM):
                message = "\n".join(keys[start : start + _KEYS_PER_DATAGRAM]).encode()
                try:
                    self._socket.sendto(message, peer)
                except (ConnectionRefusedError, FileNotFoundError):
                    with contextlib.suppress(OSError):
                        os.unlink(peer)  # its process is gone
                    break
                except BlockingIOError:
                    # The peer's queue is full (Linux keeps ~10 datagrams): it is busy,
                    # not gone. Keep what it has not had and try again shortly.
                    self._pending[peer].update(keys[start:])
                    break
                except OSError:
                    break  # a wake-up is a hint: the peer polls
        if self._pending and not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_later(_RETRY_SECONDS, self._flush)
