"""A small internet on loopback for the verifier: one DNS server with every test domain,
and mail servers at 127.0.0.x that accept, refuse, accept everything, greylist or hang.

    127.0.0.1  the main mail server; its answer depends on the recipient's domain (answer)
    127.0.0.2  a server that takes connections and never greets (SilentServer)
    127.0.0.3  servers a test starts itself (slow, hanging at RCPT, dropping idle links)
    127.0.0.4  a server without SMTPUTF8
    127.0.0.5  a mail server no setting allows (a non-public address)
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from fixtures.mail import (
    DnsServer,
    MailServer,
    everyone,
    greylisting,
    mailboxes,
)
from openenrich.config import Settings
from openenrich.email.verifier import EmailVerifier, Verification

RECORDS = [
    "acme.example. 60 IN MX 10 mx.acme.example.",
    "mx.acme.example. 60 IN A 127.0.0.1",
    "xn--bcher-kva.example. 60 IN MX 10 mx.acme.example.",
    "gmail.com. 60 IN MX 5 mx.acme.example.",
    "mailinator.com. 60 IN MX 10 mx.acme.example.",
    "catchall.example. 60 IN MX 10 mx.catchall.example.",
    "mx.catchall.example. 60 IN A 127.0.0.1",
    "grey.example. 60 IN MX 10 mx.grey.example.",
    "mx.grey.example. 60 IN A 127.0.0.1",
    "policy.example. 60 IN MX 10 mx.policy.example.",
    "mx.policy.example. 60 IN A 127.0.0.1",
    "multi.example. 60 IN MX 30 mx3.multi.example.",
    "multi.example. 60 IN MX 10 mx1.multi.example.",
    "multi.example. 60 IN MX 20 mx2.multi.example.",
    "nullmx.example. 60 IN MX 0 .",
    "direct.example. 60 IN A 127.0.0.1",
    'nomail.example. 60 IN TXT "v=spf1 -all"',
    "hang.example. 60 IN MX 10 mx.hang.example.",
    "mx.hang.example. 60 IN A 127.0.0.2",
    "backup.example. 60 IN MX 10 mx.hang.example.",
    "backup.example. 60 IN MX 20 mx.acme.example.",
    "lost.example. 60 IN MX 10 mx.nowhere.example.",
    "third.example. 60 IN MX 10 mx.third.example.",
    "mx.third.example. 60 IN A 127.0.0.3",
    "third-too.example. 60 IN MX 10 mx.third-too.example.",
    "mx.third-too.example. 60 IN A 127.0.0.3",
    "plain.example. 60 IN MX 10 mx.plain.example.",
    "mx.plain.example. 60 IN A 127.0.0.4",
    "internal.example. 60 IN MX 10 mx.internal.example.",
    "mx.internal.example. 60 IN A 127.0.0.5",
]

MAILBOXES = mailboxes(
    "ada@acme.example",
    "info@acme.example",
    "用户@acme.example",
    "ada@xn--bcher-kva.example",
    "ada@direct.example",
    "ada@backup.example",
    "someone@gmail.com",
    "temp@mailinator.com",
    "ada@plain.example",
    "ada@third.example",
    "ada@third-too.example",
)


def answer(address: str) -> str:
    domain = address.rpartition("@")[2].lower()
    if domain == "catchall.example":
        return everyone(address)
    if domain == "grey.example":
        return greylisting(address)
    if domain == "policy.example":
        return "550 5.7.1 Service unavailable; client host blocked using a DNS blocklist"
    return MAILBOXES(address)


@dataclass
class Net:
    """The servers, and settings and runs of a verifier against them."""

    dns: DnsServer
    mail: MailServer

    def dns_only(self, **changes: Any) -> Settings:
        """DNS at the test server; the SMTP probe as configured by default (off)."""
        return Settings(
            **{
                "email_dns_nameservers": ["127.0.0.1"],
                "email_dns_port": self.dns.port,
                "email_dns_timeout_seconds": 0.5,
                **changes,
            }
        )

    def probing(self, **changes: Any) -> Settings:
        """The probe on, at the test servers' port; loopback mail servers allowed (but .5)."""
        return self.dns_only(
            **{
                "email_probe_enabled": True,
                "email_probe_port": self.mail.port,
                "email_probe_helo_name": "probe.openenrich.example",
                "email_probe_mail_from": "verify@openenrich.example",
                "email_probe_timeout_seconds": 0.5,
                "allowed_private_hosts": ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"],
                **changes,
            },
        )

    def run(
        self, settings: Settings, addresses: list[str], mode: str = "probe"
    ) -> list[Verification]:
        """One verifier (one run) over `addresses`."""

        async def main() -> list[Verification]:
            async with EmailVerifier(settings) as verifier:
                return await verifier.verify_many(addresses, mode)

        return asyncio.run(main())

    def verify(
        self, settings: Settings, addresses: list[str], mode: str = "probe"
    ) -> list[dict[str, Any]]:
        return [result.as_dict() for result in self.run(settings, addresses, mode)]

    def one(self, settings: Settings, address: str, mode: str = "probe") -> dict[str, Any]:
        return self.verify(settings, [address], mode)[0]
