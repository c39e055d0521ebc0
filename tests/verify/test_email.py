"""`email_verification` in a run: each address through our email verification engine,
against its loopback internet (helpers/mailnet.py: the DNS zone `fast_settings` points at,
and a mail server on 127.0.0.1 that accepts known mailboxes, accepts anything at
catchall.example and greylists grey.example). Nothing reaches the internet."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from fixtures.mail import MailServer
from helpers.mailnet import answer
from helpers.server import free_port
from helpers.tenants import Tenants
from openenrich.config import Settings
from verify.conftest import Runs, serve


@pytest.fixture
def mail() -> Iterator[MailServer]:
    with MailServer("127.0.0.1", 0, answer) as server:
        yield server


@pytest.fixture
def probing(fast_settings: Settings, tenants: Tenants, mail: MailServer) -> Iterator[Runs]:
    """Runs on a server whose operator enabled the SMTP probe (hybrid mode)."""
    with (
        serve(
            fast_settings,
            email_probe_enabled=True,
            email_probe_port=mail.port,
            email_probe_helo_name="probe.openenrich.example",
            email_probe_mail_from="verify@openenrich.example",
            email_probe_timeout_seconds=5.0,
        ) as live,
        httpx.Client(base_url=live.url, timeout=60) as client,
    ):
        yield Runs(client, tenants.key("acme"))


def checked(runs: Runs, message: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The finished run (only email checks: kyc-us has no phone here to check), and its
    report's checks with each call's billing beside them."""
    created = runs.create({"message": message, "workflow": "kyc-us"})
    assert created.status_code == 202, created.text
    run = runs.until(created.json()["id"], "completed")
    calls = {call["id"]: call for call in run["tool_calls"]}
    checks = [
        {**check, "billed": calls[check["call_id"]]["billed"]} for check in run["report"]["checks"]
    ]
    assert {check["tool"] for check in checks} == {"email_verification"}
    return run, checks


def test_a_deliverable_address_passes_with_the_engines_observations(
    probing: Runs, mail: MailServer
) -> None:
    run, [check] = checked(probing, "Contact: Ada@ACME.example")
    assert check["status"] == "success"
    assert check["billed"] is True
    assert run["credits_used"] == 0.5
    assert (
        "Email Ada@acme.example is deliverable: mx.acme.example accepts the mailbox."
        in (run["answer"])
    )
    assert check["result"] == {
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
        "mode": "hybrid",
        "decided_by": "probe",
        "verdict": "VALID",
        "risks": [],
    }
    assert "Ada@acme.example" in mail.recipients  # asked, and then a random local part
    assert len(mail.recipients) == 2


def test_an_address_without_a_mailbox_fails_and_says_why(probing: Runs) -> None:
    run, checks = checked(
        probing, "Write to a..b@acme.example, nobody@acme.example or ada@nomail.example"
    )
    assert [(c["input"], c["status"], c["billed"], c["result"]["verdict"]) for c in checks] == [
        ("a..b@acme.example", "failed", False, "INVALID"),
        ("nobody@acme.example", "failed", False, "INVALID"),
        ("ada@nomail.example", "failed", False, "INVALID"),
    ]
    assert run["credits_used"] == 0
    for summary in (
        "Email a..b@acme.example is not valid: An email address cannot have two periods in a row.",
        "Email nobody@acme.example has no mailbox: its mail server mx.acme.example refused it "
        "(550 5.1.1 <nobody@acme.example>: Recipient address rejected: User unknown).",
        "Email ada@nomail.example has no mail domain: no MX and no A or AAAA records.",
    ):
        assert summary in run["answer"]
    bad_syntax, refused, no_domain = (check["result"] for check in checks)
    assert bad_syntax["syntax"] == {
        "valid": False,
        "reason": "An email address cannot have two periods in a row.",
    }
    assert bad_syntax["mx"] is None
    assert refused["smtp"]["status"] == "refused"
    assert no_domain["mx"]["status"] == "no_mail_domain"
    assert no_domain["smtp"]["status"] == "not_run"


def test_a_risky_address_passes_with_the_risk_named(probing: Runs) -> None:
    run, checks = checked(
        probing, "temp@mailinator.com, info@acme.example, anyone@catchall.example"
    )
    assert [(c["status"], c["billed"], c["result"]["verdict"]) for c in checks] == [
        ("success", True, "RISKY")
    ] * 3
    assert run["credits_used"] == 1.5
    disposable, role, catch_all = (check["result"] for check in checks)
    assert (disposable["risks"], disposable["disposable"]) == (["disposable"], True)
    assert (role["risks"], role["role"]) == (["role"], True)
    assert (catch_all["risks"], catch_all["catch_all"]) == (["catch_all"], True)
    for summary in (
        "Email temp@mailinator.com is risky: a disposable address.",
        "Email info@acme.example is risky: a role account.",
        "Email anyone@catchall.example is risky: a catch-all domain (its mail server accepts "
        "any address).",
    ):
        assert summary in run["answer"]


def test_where_the_probe_cannot_tell_the_domain_decides(probing: Runs) -> None:
    """Hybrid: a greylisted probe is inconclusive, and the heuristic's VALID (the domain
    receives mail) says so."""
    run, [check] = checked(probing, "ada@grey.example")
    assert (check["status"], check["billed"]) == ("success", True)
    assert (check["result"]["verdict"], check["result"]["decided_by"]) == ("VALID", "heuristic")
    assert check["result"]["smtp"]["status"] == "inconclusive"
    assert (
        "Email ada@grey.example is at a domain that receives mail (mx.grey.example); the SMTP "
        "probe could not confirm the mailbox (deferred (greylisting or a temporary failure))."
    ) in run["answer"]


def test_without_the_probe_the_heuristic_decides(runs: Runs) -> None:
    """The probe is off by default: syntax, DNS and lists, no SMTP (no mail server runs
    here), so a mailbox that does not exist passes on its domain."""
    run, [check] = checked(runs, "nobody@acme.example")
    assert (check["status"], check["billed"]) == ("success", True)
    result = check["result"]
    assert (result["mode"], result["decided_by"], result["verdict"]) == (
        "heuristic",
        "heuristic",
        "VALID",
    )
    assert result["smtp"] == {
        "status": "not_run",
        "code": None,
        "message": None,
        "host": None,
        "reason": "heuristic mode",
    }
    assert (
        "Email nobody@acme.example is at a domain that receives mail (mx.acme.example)."
        in (run["answer"])
    )


def test_unreachable_dns_is_not_found_and_not_billed(
    fast_settings: Settings, tenants: Tenants
) -> None:
    # A loopback port nothing answers on: every lookup times out.
    settings = fast_settings.model_copy(
        update={"email_dns_port": free_port(), "email_dns_timeout_seconds": 0.3}
    )
    with serve(settings) as live, httpx.Client(base_url=live.url, timeout=60) as client:
        run, [check] = checked(Runs(client, tenants.key("acme")), "ada@acme.example")
    assert (check["status"], check["billed"]) == ("not_found", False)
    assert run["credits_used"] == 0
    call = run["tool_calls"][0]
    assert (call["status"], call["billed"], call["credits"]) == ("not_found", False, 0)
    assert check["result"]["verdict"] == "UNKNOWN"
    assert check["result"]["mx"]["status"] == "timeout"
    assert (
        "Email ada@acme.example could not be checked: no DNS answer for acme.example MX in time."
    ) in run["answer"]
    assert run["answer"].startswith("Not verified. ")
    assert run["report"]["verdict"] == "not_verified"
