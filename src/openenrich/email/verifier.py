"""`EmailVerifier`: the one way to verify addresses.

    async with EmailVerifier(settings, pool) as verifier:
        results = await verifier.verify_many(addresses, Mode.HYBRID)
        results[0].as_dict()  # the verdict beside everything that decided it

A verifier is one run: it keeps DNS answers, the mail servers it gave up on and each
domain's catch-all answer until `close()`, so make one per job (or per batch), not one per
process: a mailbox created since is found by the next run. The SMTP connections and their
limits belong to the process (`SmtpPool`, one per process, passed in); a verifier made
without one has a pool of its own, closed with it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from openenrich.config import Settings
from openenrich.email import lists
from openenrich.email.mx import MailDomains, MailServers
from openenrich.email.pool import SmtpPool
from openenrich.email.probe import Prober, SmtpResult, not_run
from openenrich.email.syntax import Address, BadSyntax, parse
from openenrich.email.verdict import Mode, Verdict, by_heuristic, by_probe

# Addresses verify_many has in flight at once. Most of their time is spent waiting for DNS
# or for a connection (the pool bounds the connections themselves), so this only needs to
# keep every connection busy; more would only queue for them.
IN_FLIGHT = 256


@dataclass(frozen=True, slots=True)
class Verification:
    address: str  # as given
    mode: Mode
    verdict: Verdict
    decided_by: Mode  # probe or heuristic (in hybrid mode, whichever decided)
    syntax_reason: str | None = None  # why the syntax is invalid
    parsed: Address | None = None
    servers: MailServers | None = None
    smtp: SmtpResult | None = None
    catch_all: bool | None = None
    disposable: bool | None = None
    role: bool | None = None
    free: bool | None = None

    def as_dict(self) -> dict[str, Any]:
        """The verdict and the raw observations, as JSON values (null: not checked)."""
        parsed = self.parsed
        return {
            "address": self.address,
            "normalized": parsed.normalized if parsed else None,
            "domain": parsed.domain if parsed else None,
            "syntax": {"valid": parsed is not None, "reason": self.syntax_reason},
            "mx": self.servers.observation() if self.servers else None,
            "smtp": self.smtp.observation() if self.smtp else None,
            "catch_all": self.catch_all,
            "disposable": self.disposable,
            "role": self.role,
            "free": self.free,
            "mode": str(self.mode),
            "decided_by": str(self.decided_by),
            "verdict": str(self.verdict),
        }


class EmailVerifier:
    def __init__(self, settings: Settings, pool: SmtpPool | None = None) -> None:
        self._domains = MailDomains(settings)
        self._own_pool = None
        if pool is None:
            pool = self._own_pool = SmtpPool.from_settings(settings)
        self._prober = (
            Prober(settings, self._domains, pool) if settings.email_probe_enabled else None
        )

    async def __aenter__(self) -> EmailVerifier:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._prober is not None:
            self._prober.close()
        if self._own_pool is not None:
            await self._own_pool.close()
        self._domains.close()

    async def verify_many(
        self, addresses: Iterable[str], mode: Mode | str = Mode.HYBRID
    ) -> list[Verification]:
        """Every address's verification, in the order given."""
        mode = Mode(mode)
        items = list(addresses)
        results: list[Verification | None] = [None] * len(items)

        async def verify_each(indices: Iterator[int], workers: int) -> None:
            async def work() -> None:
                for index in indices:  # one shared iterator: each address once
                    results[index] = await self.verify(items[index], mode)

            await asyncio.gather(*(work() for _ in range(workers)))

        if self._prober is None or mode is Mode.HEURISTIC:
            await verify_each(iter(range(len(items))), min(IN_FLIGHT, len(items)))
        else:
            # Probing: each domain's addresses by as many workers as the pool gives a host
            # connections, and as many domains at once as the pool has room for. Taken in
            # the order given, addresses would spread over every domain, and with more
            # domains than the pool has room for, connections would be closed to make room
            # for one domain while their own still had addresses waiting (measured with
            # bench/email_validation.py, 50 domains and room for 64 connections: ~1,000
            # addresses/s that way, ~1,600 this way).
            pool = self._prober.pool
            per_domain = pool.per_host
            by_domain: dict[str, list[int]] = {}
            for index, address in enumerate(items):
                domain = address.rpartition("@")[2].strip().lower()  # a hint, not the check
                by_domain.setdefault(domain, []).append(index)
            domains = iter(by_domain.values())

            async def domain_at_a_time() -> None:
                for indices in domains:
                    await verify_each(iter(indices), min(per_domain, len(indices)))

            at_once = min(max(1, pool.total // per_domain), len(by_domain))
            await asyncio.gather(*(domain_at_a_time() for _ in range(at_once)))
        return [result for result in results if result is not None]

    async def verify(self, address: str, mode: Mode | str = Mode.HYBRID) -> Verification:
        mode = Mode(mode)
        try:
            parsed = parse(address)
        except BadSyntax as error:
            decided_by = Mode.HEURISTIC if mode is Mode.HEURISTIC else Mode.PROBE
            return Verification(address, mode, Verdict.INVALID, decided_by, str(error))
        disposable = lists.is_disposable(parsed.ascii_domain)
        role = lists.is_role(parsed.local_part)
        listed = disposable or role
        servers = await self._domains.servers(parsed.ascii_domain)
        smtp, catch_all = await self._probe(parsed, servers, mode)
        if mode is Mode.HEURISTIC:
            verdict, decided_by = by_heuristic(servers, listed), Mode.HEURISTIC
        else:
            verdict, decided_by = by_probe(servers, smtp, catch_all, listed), Mode.PROBE
            if verdict is Verdict.UNKNOWN and mode is Mode.HYBRID:
                verdict, decided_by = by_heuristic(servers, listed), Mode.HEURISTIC
        return Verification(
            address,
            mode,
            verdict,
            decided_by,
            parsed=parsed,
            servers=servers,
            smtp=smtp,
            catch_all=catch_all,
            disposable=disposable,
            role=role,
            free=lists.is_free(parsed.ascii_domain),
        )

    async def _probe(
        self, parsed: Address, servers: MailServers, mode: Mode
    ) -> tuple[SmtpResult, bool | None]:
        if mode is Mode.HEURISTIC:
            return not_run("heuristic mode"), None
        if not servers.found:
            return not_run("no mail server to ask"), None
        if self._prober is None:
            return not_run("the SMTP probe is off (OPENENRICH_EMAIL_PROBE_ENABLED)"), None
        smtp = await self._prober.probe(parsed, servers)
        if smtp.status == "accepted":
            return smtp, await self._prober.catch_all(parsed, servers)
        # A server that refuses an address does not accept everything.
        return smtp, False if smtp.status == "refused" else None
