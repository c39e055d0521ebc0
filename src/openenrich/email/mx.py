"""Where a domain's mail goes: its MX records, the domain itself when it has none (RFC 5321
§5.1: its A/AAAA records), or nowhere (a null MX, RFC 7505; a domain that does not exist).

DNS is asked through dnspython's asyncio resolver, at the nameservers the settings name
(the system's otherwise), with a time limit per lookup. Each `MailDomains` keeps what it
learned for its lifetime, one run: ten thousand addresses at fifty domains cost fifty MX
lookups, and addresses asked about at once share the lookup in flight.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import dns.asyncresolver
import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver
from dns.rdtypes.ANY.MX import MX

from openenrich.config import Settings

Status = Literal["found", "null_mx", "no_mail_domain", "dns_error", "timeout"]


@dataclass(frozen=True, slots=True)
class MailServers:
    status: Status
    hosts: tuple[str, ...] = ()  # most preferred first
    implicit: bool = False  # no MX records: the domain itself, which has an address
    reason: str | None = None

    @property
    def found(self) -> bool:
        return self.status == "found"

    def observation(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "hosts": list(self.hosts),
            "implicit": self.implicit,
            "reason": self.reason,
        }


class _Failed(Exception):
    def __init__(self, servers: MailServers) -> None:
        self.servers = servers


class MailDomains:
    """MX lookups and host addresses for one run, each asked once."""

    def __init__(self, settings: Settings) -> None:
        self._resolver = _resolver(settings)
        self._servers: dict[str, asyncio.Future[MailServers]] = {}
        self._addresses: dict[str, asyncio.Future[tuple[str, ...]]] = {}

    async def servers(self, ascii_domain: str) -> MailServers:
        return await _shared(self._servers, ascii_domain.lower(), self._find_servers)

    async def addresses(self, host: str) -> tuple[str, ...]:
        """The host's IPv4 addresses, else its IPv6 ones; () when it has none or DNS
        failed (the probe then says the mail server does not resolve)."""
        return await _shared(self._addresses, host.lower(), self._find_addresses)

    def close(self) -> None:
        for servers in self._servers.values():
            servers.cancel()
        for addresses in self._addresses.values():
            addresses.cancel()
        self._servers.clear()
        self._addresses.clear()

    async def _find_servers(self, domain: str) -> MailServers:
        try:
            answer = await self._query(domain, "MX")
            if answer:
                return _from_mx(answer)
            # No MX: mail goes to the domain itself if it has an address (RFC 5321 §5.1).
            addresses = await self._address_records(domain)
        except _Failed as failed:
            return failed.servers
        if not addresses:
            return MailServers("no_mail_domain", reason="no MX and no A or AAAA records")
        if domain not in self._addresses:  # the probe connects to them next
            known: asyncio.Future[tuple[str, ...]] = asyncio.get_running_loop().create_future()
            known.set_result(addresses)
            self._addresses[domain] = known
        return MailServers("found", (domain,), implicit=True)

    async def _find_addresses(self, host: str) -> tuple[str, ...]:
        try:
            return await self._address_records(host)
        except _Failed:
            return ()

    async def _address_records(self, host: str) -> tuple[str, ...]:
        for kind in ("A", "AAAA"):
            found = tuple(str(record) for record in await self._query(host, kind))
            if found:
                return found
        return ()

    async def _query(self, name: str, kind: str) -> list[Any]:
        """The records of one kind (an empty list when the name has none of that kind);
        _Failed with what that means for mail when the name does not exist or DNS failed."""
        try:
            qname = dns.name.from_text(name)
            answer = await self._resolver.resolve(qname, kind, raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN:
            raise _Failed(
                MailServers("no_mail_domain", reason=f"{name} does not exist (NXDOMAIN)")
            ) from None
        except dns.exception.Timeout:
            raise _Failed(
                MailServers("timeout", reason=f"no DNS answer for {name} {kind} in time")
            ) from None
        except (dns.exception.DNSException, OSError, ValueError) as error:
            # SERVFAIL or REFUSED from every nameserver, a malformed answer, a bad name, no
            # nameserver configured, a network that cannot reach it.
            raise _Failed(
                MailServers("dns_error", reason=f"{name} {kind}: {error}"[:300])
            ) from None
        return list(answer.rrset or ())


def _from_mx(records: list[Any]) -> MailServers:
    exchanges = sorted(
        (record.preference, record.exchange) for record in records if isinstance(record, MX)
    )
    hosts = [
        exchange.to_text(omit_final_dot=True).lower()
        for _, exchange in exchanges
        if exchange != dns.name.root
    ]
    if not hosts:  # "0 ." alone: the domain accepts no mail (RFC 7505)
        return MailServers("null_mx", reason="the domain publishes a null MX: it accepts no mail")
    # A null MX beside real ones is a misconfiguration (RFC 7505 §3): the real ones are used.
    return MailServers("found", tuple(dict.fromkeys(hosts)))


T = TypeVar("T")


async def _shared(
    tasks: dict[str, asyncio.Future[T]], key: str, find: Callable[[str], Awaitable[T]]
) -> T:
    task = tasks.get(key)
    if task is None:
        task = tasks[key] = asyncio.ensure_future(find(key))
    # Shielded: one waiter being cancelled must not cancel the lookup the others share.
    return await asyncio.shield(task)


def _resolver(settings: Settings) -> dns.asyncresolver.Resolver:
    nameservers = settings.email_dns_nameservers
    try:
        resolver = dns.asyncresolver.Resolver(configure=not nameservers)
    except dns.resolver.NoResolverConfiguration:
        # No /etc/resolv.conf: every lookup fails as a DNS error rather than the server.
        resolver = dns.asyncresolver.Resolver(configure=False)
    if nameservers:
        resolver.nameservers = [str(ipaddress.ip_address(ns)) for ns in nameservers]
        resolver.port = settings.email_dns_port
    resolver.lifetime = settings.email_dns_timeout_seconds
    resolver.timeout = settings.email_dns_timeout_seconds
    resolver.cache = None  # ours is per run (above); dnspython's would outlive it
    return resolver
