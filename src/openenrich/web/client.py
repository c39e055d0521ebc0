"""Outbound HTTP clients that only reach what the SSRF guard allows.

`guarded_connector()` is the same guard for aiohttp (the LLM gateway's chat-completions
client): its resolver checks every address a host resolves to, and aiohttp connects to
the addresses it returned.

`guarded_client()` is an `httpx.AsyncClient` whose connections are opened by
`GuardedBackend`: it resolves the host itself, refuses the connection when an address is
not public (unless private addresses are allowed), and connects to the address it checked.
URLs keep their host names, so TLS verifies the certificate against the name the user
gave, and pooled keep-alive connections are shared safely between requests. A request
hook refuses schemes other than https (http too for web pages, or when private addresses
are allowed) on every request, redirects included.

Refusals raise `web.guard.UnsafeURL`; everything else is httpx's own errors.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Collection, Iterable
from typing import Any

import aiohttp
import httpcore
import httpx
from aiohttp.abc import AbstractResolver, ResolveResult

from openenrich.web.guard import UnsafeURL, parse, resolve, tls_context


class GuardedResolver(AbstractResolver):
    """aiohttp's name resolution through the guard: a non-public address (unless allowed)
    raises UnsafeURL, which aiohttp passes on as a connection error."""

    def __init__(self, *, allow_private: bool, allowed_hosts: Collection[str] = ()) -> None:
        self.allow_private = allow_private
        self.allowed_hosts = frozenset(allowed_hosts)

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        addresses = await resolve(
            host, port, allow_private=self.allow_private, allowed_hosts=self.allowed_hosts
        )
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in addresses
        ]

    async def close(self) -> None:
        pass


def guarded_connector(
    *, allow_private: bool, allowed_hosts: Collection[str] = (), limit: int = 100
) -> aiohttp.TCPConnector:
    """Connections only to addresses the guard allows. No DNS cache: every new connection
    resolves and checks again, so a changed DNS answer (rebinding) is checked too."""
    return aiohttp.TCPConnector(
        resolver=GuardedResolver(allow_private=allow_private, allowed_hosts=allowed_hosts),
        use_dns_cache=False,
        limit=limit,
        ssl=tls_context(),
    )


class GuardedBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, *, allow_private: bool, allowed_hosts: Collection[str] = ()) -> None:
        self.allow_private = allow_private
        self.allowed_hosts = frozenset(allowed_hosts)
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):  # a name that never resolves, too
                addresses = await resolve(
                    host, port, allow_private=self.allow_private, allowed_hosts=self.allowed_hosts
                )
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from None
        failure: httpcore.ConnectError | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as error:
                failure = error
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise UnsafeURL("unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    def __init__(
        self,
        *,
        allow_private: bool,
        ssl_context: ssl.SSLContext,
        limits: httpx.Limits,
        allowed_hosts: Collection[str] = (),
    ) -> None:
        super().__init__(verify=ssl_context, limits=limits)
        # httpx has no parameter for the network backend: its pool is replaced by one that
        # opens connections through the guard (the pool is what handle_async_request uses).
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedBackend(
                allow_private=allow_private, allowed_hosts=allowed_hosts
            ),
        )


def guarded_client(
    *,
    allow_private: bool,
    timeout: float = 10.0,
    follow_redirects: bool = False,
    max_connections: int = 100,
    headers: dict[str, str] | None = None,
    allowed_hosts: Collection[str] = (),
    https_only: bool = True,
) -> httpx.AsyncClient:
    """`https_only` is for webhooks and other machine endpoints; web pages pass False."""

    async def check_scheme(request: httpx.Request) -> None:
        parse(str(request.url), allow_private=allow_private, https_only=https_only)

    return httpx.AsyncClient(
        transport=GuardedTransport(
            allowed_hosts=allowed_hosts,
            allow_private=allow_private,
            ssl_context=tls_context(),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=20),
        ),
        timeout=timeout,
        follow_redirects=follow_redirects,
        headers=headers,
        event_hooks={"request": [check_scheme]},
        trust_env=False,
    )
