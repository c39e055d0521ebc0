"""What protects the mail servers we probe, and this server: connections reused, short
transactions, and limits on the connections open at once, per MX host and in all, shared
by every run in the process."""

from __future__ import annotations

import asyncio

from fixtures.mail import MailServer, mailboxes
from helpers.mailnet import Net
from openenrich.email.pool import SmtpPool
from openenrich.email.probe import RECIPIENTS_PER_TRANSACTION
from openenrich.email.verifier import EmailVerifier, Verification

THIRD = mailboxes("ada@third.example", "ada@third-too.example")


def test_connections_are_reused_and_transactions_kept_short(net: Net) -> None:
    addresses = [f"user{n}@acme.example" for n in range(99)] + ["ada@acme.example"]
    results = net.verify(net.probing(email_probe_host_concurrency=2), addresses)
    assert [r["verdict"] for r in results] == ["INVALID"] * 99 + ["VALID"]
    assert len(net.mail.recipients) == 101  # and one catch-all test
    assert net.mail.connections == 2
    assert net.mail.most_per_transaction == RECIPIENTS_PER_TRANSACTION
    # A MAIL FROM per transaction of at most 20: RSET in between, on the same connections.
    assert len(net.mail.senders) >= 101 / RECIPIENTS_PER_TRANSACTION


def test_a_server_that_takes_fewer_recipients_per_transaction(net: Net) -> None:
    addresses = ["ada@third.example"] + [f"user{n}@third.example" for n in range(11)]
    settings = net.probing(email_probe_host_concurrency=1)
    with MailServer("127.0.0.3", net.mail.port, THIRD, max_per_transaction=5) as third:
        results = net.verify(settings, addresses)
    # Each 452 "too many recipients" starts a new transaction and asks again.
    assert [r["verdict"] for r in results] == ["VALID"] + ["INVALID"] * 11
    assert third.connections == 1
    assert len(third.senders) == 3  # 5 + 5 + 3 (the catch-all test among them)


def test_connections_per_mx_host_are_limited(net: Net) -> None:
    with MailServer("127.0.0.3", net.mail.port, THIRD, delay=0.02) as third:
        addresses = [f"user{n}@third.example" for n in range(30)]
        net.verify(net.probing(email_probe_host_concurrency=3), addresses)
    assert third.most_open == 3
    assert third.connections == 3
    assert len(third.recipients) == 30


def test_connections_in_all_are_limited(net: Net) -> None:
    addresses = [f"user{n}@third.example" for n in range(20)]
    addresses += [f"user{n}@third-too.example" for n in range(20)]
    settings = net.probing(email_probe_host_concurrency=2, email_probe_concurrency=3)
    with MailServer("127.0.0.3", net.mail.port, THIRD, delay=0.02) as third:
        net.verify(settings, addresses)
    # Two MX hosts at one server, two connections each allowed, three in all.
    assert third.most_open == 3
    assert len(third.recipients) == 40


def test_runs_in_one_process_share_the_limits(net: Net) -> None:
    settings = net.probing(email_probe_host_concurrency=2)
    addresses = [f"user{n}@third.example" for n in range(20)]

    async def two_runs(shared: bool) -> None:
        pool = SmtpPool.from_settings(settings) if shared else None

        async def one_run() -> list[Verification]:
            async with EmailVerifier(settings, pool) as verifier:
                return await verifier.verify_many(addresses)

        await asyncio.gather(one_run(), one_run())
        if pool is not None:
            assert pool.open_connections == 2  # kept for the next run
            await pool.close()
            assert pool.open_connections == 0

    with MailServer("127.0.0.3", net.mail.port, THIRD, delay=0.02) as third:
        asyncio.run(two_runs(shared=False))  # each run a pool of its own
        apart = (third.most_open, third.connections)
        third.most_open = third.connections = 0
        asyncio.run(two_runs(shared=True))
        shared = (third.most_open, third.connections)
    assert (apart, shared) == ((4, 4), (2, 2))


def test_a_connection_the_server_dropped_is_replaced(net: Net) -> None:
    async def with_a_pause() -> list[Verification]:
        async with EmailVerifier(net.probing()) as verifier:
            first = await verifier.verify("ada@third.example")
            await asyncio.sleep(0.5)  # the server closes the idle connection (421)
            return [first, await verifier.verify("user1@third.example")]

    with MailServer("127.0.0.3", net.mail.port, THIRD, idle_timeout=0.2) as third:
        first, second = asyncio.run(with_a_pause())
    assert (first.verdict, second.verdict) == ("VALID", "INVALID")
    assert third.connections == 2


def test_idle_connections_make_room_for_other_hosts(net: Net) -> None:
    """With room for one connection, each host's turn closes the other's idle one."""
    addresses = ["ada@third.example", "ada@third-too.example", "ada@third.example"]
    settings = net.probing(email_probe_concurrency=1)
    with MailServer("127.0.0.3", net.mail.port, THIRD) as third:
        results = net.run(settings, addresses)
    assert [str(r.verdict) for r in results] == ["VALID", "VALID", "VALID"]
    assert third.most_open == 1
