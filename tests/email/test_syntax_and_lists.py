"""Syntax, normalisation and the lists: what needs no server at all."""

from __future__ import annotations

import pytest

from fixtures.mail import Zone
from helpers.mailnet import Net
from openenrich.email import lists
from openenrich.email.syntax import BadSyntax, parse


def test_an_address_is_trimmed_and_normalised() -> None:
    address = parse("  Ada.Lovelace+leads@ACME.Example \n")
    assert address.normalized == "Ada.Lovelace+leads@acme.example"
    assert address.local_part == "Ada.Lovelace+leads"
    assert (address.domain, address.ascii_domain) == ("acme.example", "acme.example")
    assert address.smtp_address == "Ada.Lovelace+leads@acme.example"
    assert not address.needs_smtputf8


def test_international_domains_are_looked_up_in_their_idna_form() -> None:
    unicode, punycode = parse("ada@Bücher.example"), parse("ada@xn--bcher-kva.example")
    assert unicode.normalized == punycode.normalized == "ada@bücher.example"
    assert unicode.ascii_domain == punycode.ascii_domain == "xn--bcher-kva.example"
    assert unicode.smtp_address == "ada@xn--bcher-kva.example"


def test_a_non_ascii_local_part_needs_smtputf8() -> None:
    address = parse("用户@例子.example")
    assert address.needs_smtputf8
    assert address.smtp_address == "用户@xn--fsqu00a.example"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "must have an @-sign"),
        ("ada", "must have an @-sign"),
        ("ada@", "There must be something after the @-sign"),
        ("@acme.example", "There must be something before the @-sign"),
        ("ada@@acme.example", "invalid characters"),
        ("ada..lovelace@acme.example", "two periods in a row"),
        ("ada lovelace@acme.example", "invalid characters"),
        ("ada@acme", "It should have a period"),
        ("ada@localhost", "It should have a period"),
        ("ada@acme.test", "special-use or reserved name"),
        ('"ada"@acme.example', "Quoting the part before the @-sign is not allowed"),
        ("ada@[192.0.2.1]", "bracketed IP address"),
        ("ada@-acme.example", "hyphen immediately after the @-sign"),
        ("a" * 65 + "@acme.example", "too long before the @-sign"),
        ("ada@" + "a" * 300 + ".example", "too long (312 characters)"),
    ],
)
def test_bad_syntax_says_why(text: str, reason: str) -> None:
    with pytest.raises(BadSyntax, match=None) as raised:
        parse(text)
    assert reason in str(raised.value)


@pytest.mark.parametrize(
    ("domain", "disposable"),
    [
        ("mailinator.com", True),
        ("MAILINATOR.COM", True),
        ("inbox.mailinator.com", True),  # services hand out subdomains
        ("10minutemail.com", True),
        ("gmail.com", False),
        ("acme.example", False),
        ("com", False),
    ],
)
def test_disposable_domains(domain: str, disposable: bool) -> None:
    assert lists.is_disposable(domain) is disposable


@pytest.mark.parametrize(
    ("domain", "free"),
    [
        ("gmail.com", True),
        ("yahoo.com", True),
        ("outlook.com", True),
        ("Hotmail.com", True),
        ("gmx.de", True),
        ("acme.example", False),
        ("mail.gmail.com", False),
    ],
)
def test_free_mail_domains(domain: str, free: bool) -> None:
    assert lists.is_free(domain) is free


@pytest.mark.parametrize(
    ("local_part", "role"),
    [
        ("info", True),
        ("Sales", True),
        ("support+tickets", True),
        ("no-reply", True),
        ("no_reply", True),
        ("do.not.reply", True),
        ("postmaster", True),
        ("ada", False),
        ("ada.lovelace", False),
        ("information.desk", False),
        ("salesforce", False),
    ],
)
def test_role_accounts(local_part: str, role: bool) -> None:
    assert lists.is_role(local_part) is role


def test_the_lists_are_the_packages_data() -> None:
    assert len(lists.DISPOSABLE) > 5000
    assert len(lists.FREE) > 1000


def test_bad_syntax_is_invalid_before_anything_is_asked(net: Net, zone: Zone) -> None:
    settings = net.probing()
    for mode in ("probe", "heuristic", "hybrid"):
        result = net.one(settings, "ada@@acme.example", mode)
        assert result == {
            "address": "ada@@acme.example",
            "normalized": None,
            "domain": None,
            "syntax": {
                "valid": False,
                "reason": "The part after the @-sign contains invalid characters: '@'.",
            },
            "mx": None,
            "smtp": None,
            "catch_all": None,
            "disposable": None,
            "role": None,
            "free": None,
            "mode": mode,
            "decided_by": "heuristic" if mode == "heuristic" else "probe",
            "verdict": "INVALID",
        }
    assert zone.questions == []
    assert net.mail.recipients == []
