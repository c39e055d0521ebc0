"""Mail servers from DNS, against a real DNS server on loopback, with the probe off: what
the heuristic mode (MAILVERI) decides from syntax, DNS and the lists alone."""

from __future__ import annotations

import time

import pytest
from pydantic import ValidationError

from fixtures.mail import Zone
from helpers.mailnet import Net
from openenrich.config import Settings


def test_the_probe_is_off_unless_enabled() -> None:
    assert Settings().email_probe_enabled is False


@pytest.mark.parametrize(
    "changes",
    [
        {"email_dns_nameservers": ["dns.example"]},  # dnspython wants addresses
        {"email_probe_helo_name": "probe example"},
        {"email_probe_mail_from": "<verify@openenrich.example>"},
        {"email_probe_mail_from": "verify@openenrich.example\r\nRCPT TO:<x@y.example>"},
    ],
)
def test_settings_that_cannot_work_are_refused_at_start(changes: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Settings(**changes)  # type: ignore[arg-type]


def test_mx_records_in_order_of_preference(net: Net) -> None:
    result = net.one(net.dns_only(), "ada@multi.example", "heuristic")
    assert result["mx"] == {
        "status": "found",
        "hosts": ["mx1.multi.example", "mx2.multi.example", "mx3.multi.example"],
        "implicit": False,
        "reason": None,
    }
    assert result["smtp"] == {
        "status": "not_run",
        "code": None,
        "message": None,
        "host": None,
        "reason": "heuristic mode",
    }
    assert (result["verdict"], result["decided_by"], result["catch_all"]) == (
        "VALID",
        "heuristic",
        None,
    )


def test_a_domain_without_mx_receives_its_own_mail(net: Net) -> None:
    result = net.one(net.dns_only(), "ada@direct.example", "heuristic")
    assert result["mx"] == {
        "status": "found",
        "hosts": ["direct.example"],
        "implicit": True,
        "reason": None,
    }
    assert result["verdict"] == "VALID"


def test_no_mail_domains_are_invalid(net: Net) -> None:
    results = net.verify(
        net.dns_only(),
        ["ada@nullmx.example", "ada@nomail.example", "ada@nowhere.example"],
        "heuristic",
    )
    assert [(r["mx"]["status"], r["mx"]["reason"], r["verdict"]) for r in results] == [
        ("null_mx", "the domain publishes a null MX: it accepts no mail", "INVALID"),
        ("no_mail_domain", "no MX and no A or AAAA records", "INVALID"),
        ("no_mail_domain", "nowhere.example does not exist (NXDOMAIN)", "INVALID"),
    ]


def test_a_failing_dns_leaves_the_address_unknown(net: Net) -> None:
    result = net.one(net.dns_only(), "ada@servfail.example", "heuristic")
    assert result["mx"]["status"] == "dns_error"
    assert result["mx"]["reason"].startswith("servfail.example MX: ")
    assert result["verdict"] == "UNKNOWN"


def test_a_silent_dns_times_out(net: Net) -> None:
    started = time.monotonic()
    results = net.verify(
        net.dns_only(email_dns_timeout_seconds=0.3),
        ["ada@silent.example", "bob@silent.example", "ada@acme.example"],
        "hybrid",
    )
    assert time.monotonic() - started < 2  # one time limit, shared by both addresses
    assert [r["mx"]["status"] for r in results] == ["timeout", "timeout", "found"]
    assert results[0]["mx"]["reason"] == "no DNS answer for silent.example MX in time"
    assert [r["verdict"] for r in results] == ["UNKNOWN", "UNKNOWN", "VALID"]


def test_a_nameserver_that_is_not_there_times_out(net: Net) -> None:
    settings = net.dns_only(email_dns_port=9, email_dns_timeout_seconds=0.3)  # nothing on 9
    result = net.one(settings, "ada@acme.example", "heuristic")
    assert result["mx"]["status"] == "timeout"
    assert result["verdict"] == "UNKNOWN"


def test_each_domain_is_looked_up_once_per_run(net: Net, zone: Zone) -> None:
    addresses = [f"user{n}@acme.example" for n in range(50)] + ["ada@direct.example"] * 5
    results = net.verify(net.dns_only(), addresses, "heuristic")
    assert {r["verdict"] for r in results} == {"VALID"}
    assert sorted(zone.questions) == [
        ("acme.example.", "MX"),
        ("direct.example.", "A"),
        ("direct.example.", "MX"),
    ]
    net.verify(net.dns_only(), ["ada@acme.example"], "heuristic")
    assert zone.questions.count(("acme.example.", "MX")) == 2  # a new run asks again


def test_international_domains_are_asked_in_idna(net: Net, zone: Zone) -> None:
    result = net.one(net.dns_only(), "ada@Bücher.example", "heuristic")
    assert (result["normalized"], result["domain"]) == ("ada@bücher.example", "bücher.example")
    assert result["mx"]["hosts"] == ["mx.acme.example"]
    assert zone.questions == [("xn--bcher-kva.example.", "MX")]


def test_lists_make_an_address_risky(net: Net) -> None:
    results = net.verify(
        net.dns_only(),
        ["temp@mailinator.com", "info@acme.example", "someone@gmail.com", "ada@acme.example"],
        "heuristic",
    )
    assert [(r["disposable"], r["role"], r["free"], r["verdict"]) for r in results] == [
        (True, False, True, "RISKY"),  # the free list names it too
        (False, True, False, "RISKY"),
        (False, False, True, "VALID"),  # free mail is noted, not held against the address
        (False, False, False, "VALID"),
    ]


def test_invalid_beats_risky(net: Net) -> None:
    result = net.one(net.dns_only(), "info@nullmx.example", "heuristic")
    assert (result["role"], result["verdict"]) == (True, "INVALID")
