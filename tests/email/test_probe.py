"""The SMTP probe against real mail servers on loopback (aiosmtpd): what they answer, what
the verifier makes of it, and what the servers saw."""

from __future__ import annotations

import re
import time

from fixtures.mail import MailServer, SilentServer, mailboxes
from helpers.mailnet import Net

RANDOM_LOCAL = re.compile(r"^[0-9a-f]{20}@")


def test_an_accepted_address_is_valid(net: Net) -> None:
    result = net.one(net.probing(), "Ada@ACME.example")
    assert result == {
        "address": "Ada@ACME.example",
        "normalized": "Ada@acme.example",
        "domain": "acme.example",
        "syntax": {"valid": True, "reason": None},
        "mx": {"status": "found", "hosts": ["mx.acme.example"], "implicit": False, "reason": None},
        "smtp": {
            "status": "accepted",
            "code": 250,
            "message": "2.1.5 Ok",
            "host": "mx.acme.example",
            "reason": None,
        },
        "catch_all": False,
        "disposable": False,
        "role": False,
        "free": False,
        "mode": "probe",
        "decided_by": "probe",
        "verdict": "VALID",
    }
    # EHLO with our name, MAIL FROM our address, the address, then one random local part
    # at the same domain (refused: not catch-all).
    assert net.mail.helo_names == ["probe.openenrich.example"]
    assert net.mail.senders == ["verify@openenrich.example"]
    assert net.mail.recipients[0] == "Ada@acme.example"
    assert len(net.mail.recipients) == 2
    assert RANDOM_LOCAL.match(net.mail.recipients[1])
    assert net.mail.recipients[1].endswith("@acme.example")


def test_a_refused_address_is_invalid(net: Net) -> None:
    result = net.one(net.probing(), "bob@acme.example")
    assert result["smtp"] == {
        "status": "refused",
        "code": 550,
        "message": "5.1.1 <bob@acme.example>: Recipient address rejected: User unknown",
        "host": "mx.acme.example",
        "reason": None,
    }
    assert (result["catch_all"], result["verdict"]) == (False, "INVALID")
    assert net.mail.recipients == ["bob@acme.example"]  # no catch-all test needed


def test_a_catch_all_domain_is_risky_and_tested_once(net: Net) -> None:
    addresses = [f"person{n}@catchall.example" for n in range(30)]
    results = net.verify(net.probing(), addresses)
    assert {(r["smtp"]["status"], r["catch_all"], r["verdict"]) for r in results} == {
        ("accepted", True, "RISKY")
    }
    random = [r for r in net.mail.recipients if RANDOM_LOCAL.match(r)]
    assert len(random) == 1
    assert len(net.mail.recipients) == 31


def test_greylisting_is_inconclusive(net: Net) -> None:
    probe, hybrid = (
        net.one(net.probing(), "ada@grey.example", mode) for mode in ("probe", "hybrid")
    )
    assert probe["smtp"] == {
        "status": "inconclusive",
        "code": 451,
        "message": "4.7.1 Greylisted, please try again in 300 seconds",
        "host": "mx.grey.example",
        "reason": "deferred (greylisting or a temporary failure)",
    }
    assert (probe["catch_all"], probe["verdict"], probe["decided_by"]) == (None, "UNKNOWN", "probe")
    # Hybrid: the probe could not tell, so the heuristic decides.
    assert hybrid["smtp"] == probe["smtp"]
    assert (hybrid["verdict"], hybrid["decided_by"]) == ("VALID", "heuristic")


def test_a_policy_refusal_says_nothing_about_the_address(net: Net) -> None:
    result = net.one(net.probing(), "ada@policy.example")
    assert result["smtp"]["status"] == "inconclusive"
    assert result["smtp"]["code"] == 550
    assert result["smtp"]["reason"] == "refused by the server's policy, not the address"
    assert result["verdict"] == "UNKNOWN"


def test_a_server_that_never_greets_times_out_once_per_run(net: Net, silent: SilentServer) -> None:
    started = time.monotonic()
    results = net.verify(
        net.probing(email_probe_host_concurrency=1),
        [f"user{n}@hang.example" for n in range(20)] + ["ada@acme.example"],
    )
    # One time limit (0.5 s), then every other address there knows the host is down.
    assert time.monotonic() - started < 2
    assert {(r["smtp"]["status"], r["smtp"]["reason"], r["verdict"]) for r in results[:-1]} == {
        ("inconclusive", "the mail server timed out", "UNKNOWN")
    }
    assert results[-1]["verdict"] == "VALID"


def test_a_server_that_hangs_at_rcpt_times_out(net: Net) -> None:
    hanging = mailboxes("ada@third.example")
    with MailServer("127.0.0.3", net.mail.port, hanging, hang_on=["slow@third.example"]) as third:
        started = time.monotonic()
        results = net.verify(net.probing(), ["slow@third.example", "ada@third.example"], "hybrid")
        assert time.monotonic() - started < 2
    assert results[0]["smtp"] == {
        "status": "inconclusive",
        "code": None,
        "message": None,
        "host": "mx.third.example",
        "reason": "the mail server timed out",
    }
    assert (results[0]["verdict"], results[0]["decided_by"]) == ("VALID", "heuristic")
    assert third.recipients[0] == "slow@third.example"


def test_the_next_mx_is_asked_when_the_first_cannot_be(net: Net, silent: SilentServer) -> None:
    result = net.one(net.probing(), "ada@backup.example")
    assert result["mx"]["hosts"] == ["mx.hang.example", "mx.acme.example"]
    assert result["smtp"]["status"] == "accepted"
    assert result["smtp"]["host"] == "mx.acme.example"
    assert result["verdict"] == "VALID"


def test_a_domain_without_mx_is_probed_at_its_own_address(net: Net) -> None:
    result = net.one(net.probing(), "ada@direct.example")
    assert result["mx"]["implicit"] is True
    assert (result["smtp"]["status"], result["smtp"]["host"]) == ("accepted", "direct.example")
    assert result["verdict"] == "VALID"


def test_an_mx_host_that_does_not_resolve(net: Net) -> None:
    result = net.one(net.probing(), "ada@lost.example", "hybrid")
    assert result["smtp"]["reason"] == "the mail server mx.nowhere.example does not resolve"
    assert (result["verdict"], result["decided_by"]) == ("VALID", "heuristic")


def test_a_refused_connection_is_inconclusive(net: Net) -> None:
    # Nothing listens on 127.0.0.3 in this test.
    result = net.one(net.probing(), "ada@third.example")
    assert result["smtp"]["status"] == "inconclusive"
    assert result["smtp"]["reason"].startswith("could not connect: ")
    assert result["verdict"] == "UNKNOWN"


def test_international_addresses(net: Net, plain: MailServer) -> None:
    results = net.verify(
        net.probing(), ["ada@bücher.example", "用户@acme.example", "用户@plain.example"]
    )
    asked = sorted(r for r in net.mail.recipients if not RANDOM_LOCAL.match(r))
    assert asked == ["ada@xn--bcher-kva.example", "用户@acme.example"]
    assert [(r["smtp"]["status"], r["verdict"]) for r in results[:2]] == [
        ("accepted", "VALID"),
        ("accepted", "VALID"),
    ]
    # A server without SMTPUTF8 cannot be asked about a non-ASCII local part.
    assert results[2]["smtp"]["status"] == "inconclusive"
    assert results[2]["smtp"]["reason"] == (
        "the address needs SMTPUTF8, which the mail server does not offer"
    )
    assert plain.recipients == []


def test_lists_and_the_probe_together(net: Net) -> None:
    results = net.verify(
        net.probing(), ["temp@mailinator.com", "info@acme.example", "someone@gmail.com"]
    )
    assert [(r["smtp"]["status"], r["catch_all"], r["verdict"]) for r in results] == [
        ("accepted", False, "RISKY"),  # disposable
        ("accepted", False, "RISKY"),  # role account
        ("accepted", False, "VALID"),  # free mail is only noted
    ]
    assert [r["free"] for r in results] == [True, False, True]


def test_with_the_probe_off_nothing_is_asked(net: Net) -> None:
    settings = net.dns_only(email_probe_port=net.mail.port)  # everything but the switch
    probe, hybrid, heuristic = (
        net.one(settings, "bob@acme.example", mode) for mode in ("probe", "hybrid", "heuristic")
    )
    assert probe["smtp"]["status"] == "not_run"
    assert probe["smtp"]["reason"] == "the SMTP probe is off (OPENENRICH_EMAIL_PROBE_ENABLED)"
    assert (probe["verdict"], hybrid["verdict"], heuristic["verdict"]) == (
        "UNKNOWN",
        "VALID",  # the heuristic cannot know bob has no mailbox
        "VALID",
    )
    assert hybrid["decided_by"] == "heuristic"
    assert net.mail.recipients == []
    assert net.mail.connections == 0


def test_mail_servers_at_private_addresses_are_not_probed(net: Net) -> None:
    # 127.0.0.5 is allowed by no setting; and with nothing allowed, neither is 127.0.0.1.
    internal = net.one(net.probing(), "ada@internal.example")
    guarded = net.one(net.probing(allowed_private_hosts=[]), "ada@acme.example")
    for result, host in ((internal, "mx.internal.example"), (guarded, "mx.acme.example")):
        assert result["smtp"]["status"] == "inconclusive"
        assert result["smtp"]["reason"] == f"the mail server {host} is at a non-public address"
    assert net.mail.connections == 0
    # Named by host, or all private addresses allowed:
    by_name = net.one(net.probing(allowed_private_hosts=["mx.acme.example"]), "ada@acme.example")
    everything = net.one(
        net.probing(allowed_private_hosts=[], allow_private_urls=True), "ada@acme.example"
    )
    assert by_name["verdict"] == everything["verdict"] == "VALID"


def test_the_null_sender_and_the_machines_name_by_default(net: Net) -> None:
    settings = net.probing(email_probe_mail_from="", email_probe_helo_name=None)
    assert net.one(settings, "ada@acme.example")["verdict"] == "VALID"
    assert net.mail.senders == ["<>"]  # aiosmtpd's spelling of the null sender
    assert net.mail.helo_names[0]  # socket.getfqdn(): whatever this machine is called


def test_results_keep_the_order_given(net: Net) -> None:
    addresses = [
        "bob@acme.example",
        "ada@acme.example",
        "x@catchall.example",
        "bad",
        "ada@acme.example",
    ]
    results = net.verify(net.probing(), addresses)
    assert [r["address"] for r in results] == addresses
    assert [r["verdict"] for r in results] == ["INVALID", "VALID", "RISKY", "INVALID", "VALID"]
