"""The SSRF guard: a user-given URL may only reach the public internet.

`resolve_public(url)` resolves the host and refuses the URL when any address it resolves
to is not public: loopback, private (RFC 1918, unique-local), link-local (including cloud
metadata at 169.254.169.254), carrier-grade NAT (100.64/10), multicast, reserved,
unspecified, and IPv4 embedded in IPv6 that maps to any of those. Webhooks must use
https; fetched web pages may use http too. `OPENENRICH_ALLOW_PRIVATE_URLS` lifts both rules,
for local development and tests; `OPENENRICH_ALLOWED_PRIVATE_HOSTS` names the few private
hosts (an internal Ollama server, say) that may be reached while the guard stays on.

Requests go through `web.client.guarded_client`, which makes the same check for every
connection it opens and connects to the addresses it checked (not to the name again), so
a DNS answer that changes between the check and the connection (rebinding) cannot slip
through, and every redirect hop is checked too.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Collection
from dataclasses import dataclass
from urllib.parse import urlsplit

_CGNAT = ipaddress.ip_network("100.64.0.0/10")


class UnsafeURL(ValueError):
    """The URL is malformed, not https, or reaches a non-public address."""


@dataclass(frozen=True, slots=True)
class Target:
    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...]


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped or ip.sixtofour
        if mapped is not None:
            return is_public(str(mapped))
    if isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT:
        return False
    return ip.is_global and not (ip.is_multicast or ip.is_reserved)


def is_allowed_host(host: str, port: int, allowed_hosts: Collection[str]) -> bool:
    """Whether `host` (or `host:port`) is one the operator let through the guard."""
    host = host.lower().strip("[]")
    return host in allowed_hosts or f"{host}:{port}" in allowed_hosts


def parse(url: str, *, allow_private: bool, https_only: bool = True) -> tuple[str, str, int]:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UnsafeURL("not a valid URL") from None
    scheme = parts.scheme.lower()
    if https_only and not allow_private:
        if scheme != "https":
            raise UnsafeURL("only https URLs are allowed")
    elif scheme not in ("https", "http"):
        raise UnsafeURL("only http(s) URLs")
    if not parts.hostname:
        raise UnsafeURL("the URL has no host")
    if parts.username or parts.password:
        raise UnsafeURL("URLs with credentials are not allowed")
    return scheme, parts.hostname, port or (443 if scheme == "https" else 80)


def tls_context() -> ssl.SSLContext:
    """One verifying TLS context for every outbound client: building one loads the CA
    bundle, which costs tens of milliseconds (measured: 68% of a busy event loop when a
    client was made per request)."""
    global _TLS
    if _TLS is None:
        _TLS = ssl.create_default_context()
    return _TLS


_TLS: ssl.SSLContext | None = None


async def resolve(
    host: str, port: int, *, allow_private: bool, allowed_hosts: Collection[str] = ()
) -> tuple[str, ...]:
    """The addresses of `host`; UnsafeURL if it does not resolve, or (unless private
    addresses or this host are allowed) if any of them is not public."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise UnsafeURL(f"the host {host} does not resolve") from None
    addresses = tuple(dict.fromkeys(str(info[4][0]) for info in infos))
    if not allow_private and not is_allowed_host(host, port, allowed_hosts):
        for address in addresses:
            if not is_public(address):
                raise UnsafeURL(f"the host {host} resolves to a non-public address")
    return addresses


async def resolve_public(
    url: str, *, allow_private: bool, allowed_hosts: Collection[str] = (), https_only: bool = True
) -> Target:
    """Check `url` and resolve its host; UnsafeURL if it must not be fetched."""
    scheme, host, port = parse(url, allow_private=allow_private, https_only=https_only)
    addresses = await resolve(host, port, allow_private=allow_private, allowed_hosts=allowed_hosts)
    return Target(scheme, host, port, addresses)
