"""The verifier's loopback internet (helpers/mailnet.py), as fixtures: each test gets
servers of its own, so what they count is the test's alone."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fixtures.mail import DnsServer, MailServer, SilentServer, Zone
from helpers.mailnet import RECORDS, Net, answer


@pytest.fixture
def zone() -> Zone:
    return Zone(RECORDS, servfail=["servfail.example"], silent=["silent.example"])


@pytest.fixture
def dns(zone: Zone) -> Iterator[DnsServer]:
    with DnsServer(zone) as server:
        yield server


@pytest.fixture
def mail() -> Iterator[MailServer]:
    with MailServer("127.0.0.1", 0, answer) as server:
        yield server


@pytest.fixture
def silent(mail: MailServer) -> Iterator[SilentServer]:
    with SilentServer("127.0.0.2", mail.port) as server:
        yield server


@pytest.fixture
def plain(mail: MailServer) -> Iterator[MailServer]:
    with MailServer("127.0.0.4", mail.port, answer, smtputf8=False) as server:
        yield server


@pytest.fixture
def net(dns: DnsServer, mail: MailServer) -> Net:
    return Net(dns, mail)
