"""The SMTP probe: ask a domain's mail server whether it would take mail for an address,
without sending any (EHLO, MAIL FROM, RCPT TO, and no DATA).

- Connections go to the most preferred MX host that answers (the next ones when one cannot
  be reached or will not talk), on `email_probe_port` (25), without TLS: nothing secret
  crosses them and a handshake per connection would cost more than the probe.
- Connections are kept open and reused (`pool.SmtpPool`): up to
  `RECIPIENTS_PER_TRANSACTION` RCPT TO per MAIL FROM, then RSET and a new MAIL FROM. One
  connection checks hundreds of addresses for the price of one handshake. The pool bounds
  the connections open at once, in all and per MX host, so no run floods one provider
  (providers block hosts that open many connections); domains that share a mail server
  (Google Workspace, Microsoft 365) share its limit.
- 2xx is accepted, 5xx refused, except that a 5.7.x enhanced status (policy: "your IP is
  blocked") says nothing about the address and is inconclusive; 4xx (greylisting, a full
  queue) and timeouts are inconclusive. A mail server that cannot be reached, hangs, or
  refuses our sender is remembered for the run, so its other addresses do not wait again.
- Catch-all: the first address accepted at a domain is followed by one RCPT TO for a random
  local part there; a server that accepts that accepts anything, and its "accepted" means
  nothing. Asked once per domain per run.
- Mail servers at non-public addresses are not probed (a tenant could otherwise list
  mailboxes on the operator's internal mail server), unless `OPENENRICH_ALLOW_PRIVATE_URLS`
  is on or `OPENENRICH_ALLOWED_PRIVATE_HOSTS` names the MX host or its address.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import socket
from dataclasses import dataclass, replace
from typing import Any, Literal

import aiosmtplib

from openenrich.config import Settings
from openenrich.email.mx import MailDomains, MailServers
from openenrich.email.pool import SmtpPool
from openenrich.email.syntax import Address
from openenrich.web.guard import is_allowed_host, is_public

# RFC 5321 lets a server refuse more than 100 recipients per transaction; many count
# refused recipients and drop the connection after some 20 (Postfix's
# smtpd_hard_error_limit), so a transaction is kept short.
RECIPIENTS_PER_TRANSACTION = 20
# MX hosts tried for one address: a domain's third or fourth MX is a backup that queues
# anything for later and answers nothing useful.
MAX_HOSTS = 2
MAX_MESSAGE = 300  # characters of a server's reply kept in the observation

_ENHANCED = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})\b")

Status = Literal["accepted", "refused", "inconclusive", "not_run"]


@dataclass(frozen=True, slots=True)
class SmtpResult:
    status: Status
    code: int | None = None
    message: str | None = None
    host: str | None = None  # the MX host that answered
    reason: str | None = None  # ours: why inconclusive, or why not run

    def observation(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "code": self.code,
            "message": self.message,
            "host": self.host,
            "reason": self.reason,
        }


def not_run(reason: str) -> SmtpResult:
    return SmtpResult("not_run", reason=reason)


class _Unreachable(Exception):
    """The host could not be used at all: try the next one, and skip it for the run."""

    def __init__(self, result: SmtpResult) -> None:
        self.result = result


class _Connection:
    def __init__(self, smtp: aiosmtplib.SMTP, host: str) -> None:
        self.smtp = smtp
        self.host = host
        self.smtputf8 = smtp.supports_extension("smtputf8")
        self.recipients: int | None = None  # RCPT TO in the open transaction; None: no MAIL

    @property
    def usable(self) -> bool:
        return self.smtp.is_connected

    def close(self) -> None:
        self.smtp.close()

    async def quit(self) -> None:
        if self.usable:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                await self.smtp.execute_command(b"QUIT", timeout=1.0)
        self.close()


class Prober:
    """One run's probe: the mail servers it gave up on, and what each domain's catch-all
    test said. Its connections are the pool's."""

    def __init__(self, settings: Settings, domains: MailDomains, pool: SmtpPool) -> None:
        self.pool = pool
        self._settings = settings
        self._domains = domains
        self._port = settings.email_probe_port
        self._timeout = settings.email_probe_timeout_seconds
        self._sender = settings.email_probe_mail_from
        self._helo: str | None = settings.email_probe_helo_name
        self._down: dict[str, SmtpResult] = {}
        self._catch_all: dict[str, asyncio.Future[bool | None]] = {}

    async def probe(self, address: Address, servers: MailServers) -> SmtpResult:
        return await self._rcpt_anywhere(address.smtp_address, address.needs_smtputf8, servers)

    async def catch_all(self, address: Address, servers: MailServers) -> bool | None:
        """Whether the domain's mail server accepts any local part (None: it would not
        say). Asked once per domain; later callers share the answer."""
        domain = address.ascii_domain
        task = self._catch_all.get(domain)
        if task is None:
            task = self._catch_all[domain] = asyncio.ensure_future(
                self._test_catch_all(domain, servers)
            )
        return await asyncio.shield(task)

    def close(self) -> None:
        for task in self._catch_all.values():
            task.cancel()

    async def _test_catch_all(self, domain: str, servers: MailServers) -> bool | None:
        # 20 random hex characters: no mailbox is called that, and no two runs ask alike.
        result = await self._rcpt_anywhere(f"{secrets.token_hex(10)}@{domain}", False, servers)
        return {"accepted": True, "refused": False}.get(result.status)

    async def _rcpt_anywhere(
        self, recipient: str, smtputf8: bool, servers: MailServers
    ) -> SmtpResult:
        result = SmtpResult("inconclusive", reason="no mail server to ask")
        for host in servers.hosts[:MAX_HOSTS]:
            if host in self._down:
                result = self._down[host]
                continue
            try:
                return await self._rcpt_at(host, recipient, smtputf8)
            except _Unreachable as unreachable:
                result = self._down.setdefault(host, unreachable.result)
        return result

    async def _rcpt_at(self, host: str, recipient: str, smtputf8: bool) -> SmtpResult:
        addresses = await self._addresses(host)

        async def connect() -> _Connection:
            return await self._connect(host, addresses)

        async with self.pool.lease(host, connect) as lease:
            if host in self._down:  # found out while this task waited for the host
                raise _Unreachable(self._down[host])
            try:
                while True:
                    connection = await lease.get()
                    try:
                        result = await self._rcpt(connection, recipient, smtputf8)
                    except aiosmtplib.SMTPServerDisconnected:
                        if not lease.reused:
                            raise
                        # The server closed a connection we kept (an idle timeout, its
                        # limit of commands): ask again on another.
                        lease.discard()
                        continue
                    return replace(result, host=host)
            except aiosmtplib.SMTPTimeoutError:
                lease.discard()
                raise _Unreachable(
                    SmtpResult("inconclusive", host=host, reason="the mail server timed out")
                ) from None
            except (aiosmtplib.SMTPException, OSError) as error:
                lease.discard()
                raise _Unreachable(
                    SmtpResult(
                        "inconclusive",
                        host=host,
                        reason=f"the connection to the mail server failed: {error}"[:MAX_MESSAGE],
                    )
                ) from None
            except _Unreachable:
                lease.discard()
                raise
            except asyncio.CancelledError:
                # Perhaps in the middle of a command: its answer would be read as the next's.
                lease.discard()
                raise

    async def _rcpt(self, connection: _Connection, recipient: str, smtputf8: bool) -> SmtpResult:
        if smtputf8 and not connection.smtputf8:
            return SmtpResult(
                "inconclusive",
                reason="the address needs SMTPUTF8, which the mail server does not offer",
            )
        smtp = connection.smtp
        while True:
            if (
                connection.recipients is not None
                and connection.recipients >= RECIPIENTS_PER_TRANSACTION
            ):
                await smtp.execute_command(b"RSET")
                connection.recipients = None
            if connection.recipients is None:
                sender = b"FROM:<" + self._sender.encode() + b">"
                options = (b"SMTPUTF8",) if connection.smtputf8 else ()
                reply = await smtp.execute_command(b"MAIL", sender, *options)
                if reply.code != 250:
                    refused = SmtpResult(
                        "inconclusive",
                        reply.code,
                        reply.message[:MAX_MESSAGE],
                        reason="the mail server did not take our MAIL FROM",
                    )
                    if reply.code >= 500:  # it will not take it for any address
                        raise _Unreachable(replace(refused, host=connection.host))
                    return refused
                connection.recipients = 0
            reply = await smtp.execute_command(b"RCPT", b"TO:<" + recipient.encode() + b">")
            connection.recipients += 1
            if reply.code == 452 and connection.recipients > 1:
                # "Too many recipients": the server allows fewer per transaction than we
                # send. Ask again in a transaction of its own.
                connection.recipients = RECIPIENTS_PER_TRANSACTION
                continue
            return _classify(reply.code, reply.message)

    async def _addresses(self, host: str) -> tuple[str, ...]:
        addresses = await self._domains.addresses(host)
        if not addresses:
            raise _Unreachable(
                SmtpResult(
                    "inconclusive", host=host, reason=f"the mail server {host} does not resolve"
                )
            )
        if self._settings.allow_private_urls:
            return addresses
        allowed = self._settings.allowed_private_hosts
        usable = tuple(
            address
            for address in addresses
            if is_public(address)
            or is_allowed_host(host, self._port, allowed)
            or is_allowed_host(address, self._port, allowed)
        )
        if not usable:
            raise _Unreachable(
                SmtpResult(
                    "inconclusive",
                    host=host,
                    reason=f"the mail server {host} is at a non-public address",
                )
            )
        return usable

    async def _connect(self, host: str, addresses: tuple[str, ...]) -> _Connection:
        helo = self._helo or await self._default_helo()
        failure = SmtpResult("inconclusive", host=host)
        for address in addresses:
            smtp = aiosmtplib.SMTP(
                hostname=address,
                port=self._port,
                local_hostname=helo,
                timeout=self._timeout,
                start_tls=False,
            )
            try:
                await smtp.connect()
                reply = await smtp.execute_command(b"EHLO", helo.encode())
                if reply.code == 250:
                    smtp.last_ehlo_response = reply  # records the extensions (SMTPUTF8)
                else:
                    reply = await smtp.execute_command(b"HELO", helo.encode())
                    if reply.code != 250:
                        raise aiosmtplib.SMTPHeloError(reply.code, reply.message)
                return _Connection(smtp, host)
            except aiosmtplib.SMTPTimeoutError:
                failure = replace(failure, reason="the mail server timed out")
            except aiosmtplib.SMTPResponseException as error:
                failure = replace(
                    failure,
                    code=error.code,
                    message=error.message[:MAX_MESSAGE],
                    reason="the mail server would not talk to us",
                )
            except (aiosmtplib.SMTPException, OSError) as error:
                failure = replace(failure, reason=f"could not connect: {error}"[:MAX_MESSAGE])
            smtp.close()
        raise _Unreachable(failure)

    async def _default_helo(self) -> str:
        # The machine's name, once per run (getfqdn may ask DNS, so not on the loop).
        self._helo = await asyncio.to_thread(socket.getfqdn)
        return self._helo


def _classify(code: int, message: str) -> SmtpResult:
    text = message[:MAX_MESSAGE]
    if 200 <= code < 300:
        return SmtpResult("accepted", code, text)
    if 400 <= code < 500:
        return SmtpResult(
            "inconclusive", code, text, reason="deferred (greylisting or a temporary failure)"
        )
    if 500 <= code < 600:
        enhanced = _ENHANCED.match(message)
        if enhanced is not None and enhanced.group(2) == "7":
            return SmtpResult(
                "inconclusive", code, text, reason="refused by the server's policy, not the address"
            )
        return SmtpResult("refused", code, text)
    return SmtpResult("inconclusive", code, text, reason="an answer SMTP does not define")
