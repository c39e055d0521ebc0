"""Runs that come to a verdict, over HTTP: a valid identity is verified with a name match
score, a name on the sanctions list needs review with the candidate shown, a PAN whose
surname initial is someone else's needs review, and a follow-up in a thread builds on
the first run's findings. DNS is the loopback zone of helpers/mailnet.py; the sanctions
list is the synthetic sample shipped with OpenEnrich."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import jsonschema
import pytest

from helpers.tenants import Tenants
from openenrich.config import Settings
from openenrich.verify.report import REPORT_SCHEMA
from openenrich.verify.sanctions import sample_list_path
from verify.conftest import Runs, serve


@pytest.fixture
def runs(fast_settings: Settings, tenants: Tenants) -> Iterator[Runs]:
    settings = fast_settings.model_copy(
        update={"verify_sanctions_list": sample_list_path(), "approval_min_checks": 20}
    )
    with serve(settings) as live, httpx.Client(base_url=live.url, timeout=60) as client:
        yield Runs(client, tenants.key("acme"))


def finished(runs: Runs, body: dict[str, Any]) -> dict[str, Any]:
    created = runs.create(body)
    assert created.status_code == 202, created.text
    run = runs.until(created.json()["id"], "completed")
    jsonschema.validate(run["report"], REPORT_SCHEMA)
    assert run["credits_used"] == sum(call["credits"] for call in run["tool_calls"])
    return run


def cross_check(run: dict[str, Any], tool: str) -> dict[str, Any]:
    return next(c for c in run["report"]["cross_checks"] if c["tool"] == tool)


def test_a_valid_identity_is_verified_with_a_name_match_score(runs: Runs) -> None:
    run = finished(
        runs,
        {
            "message": "Verify identity: Rahul Sharma, +91 98765 43210, PAN ABCPS1234K, "
            "rahul.sharma@acme.example",
            "workflow": "kyc-verification",
        },
    )
    report = run["report"]
    assert report["verdict"] == "verified", report["reasons"]
    assert [(c["tool"], c["status"]) for c in report["checks"]] == [
        ("pan_verification", "success"),
        ("mobile_verification", "success"),
        ("email_verification", "success"),
    ]
    match = cross_check(run, "name_match")
    assert match["result"]["score"] == 100
    assert match["result"]["against"] == "Rahul Sharma"
    assert cross_check(run, "sanctions_screening")["result"]["candidates"] == []
    assert report["risk_flags"] == []
    assert run["answer"].startswith("Rahul Sharma: verified. ")
    assert "Name match 100% between Rahul Sharma and Rahul Sharma" in run["answer"]
    # Every call that passed is billed at its price, and only those.
    billed = {call["name"]: call["credits"] for call in run["tool_calls"] if call["billed"]}
    assert billed == {
        "pan_verification": 2,
        "mobile_verification": 1,
        "email_verification": 0.5,
        "name_match": 0.2,
        "sanctions_screening": 1,
    }


def test_a_name_on_the_sanctions_list_needs_review_with_the_candidate_shown(
    runs: Runs,
) -> None:
    run = finished(runs, {"message": "KYC for Viktor Kozlov, born 14/03/1961, PAN ABCPK1234Q"})
    report = run["report"]
    assert report["subject"] == {"name": "Viktor Kozlov", "birth_date": "1961-03-14"}
    assert report["verdict"] == "needs_review"
    screening = cross_check(run, "sanctions_screening")
    best = screening["result"]["candidates"][0]
    assert best["id"] == "smp-p-0001"
    assert best["caption"] == "Viktor Petrovich Kozlov"
    assert "birth_date" in best["matched"]
    assert report["risk_flags"][0]["code"] == "sanctions_candidate"
    assert "Viktor Petrovich Kozlov" in run["answer"]
    assert run["answer"].startswith("Viktor Kozlov: needs review. ")


def test_a_pan_of_another_surname_needs_review(runs: Runs) -> None:
    run = finished(runs, {"message": "Verify Priya Patel, PAN ABCPS1234K"})
    assert run["report"]["verdict"] == "needs_review"
    assert (
        "PAN ABCPS1234K belongs to a person whose surname starts with 'S', not Patel."
        in run["answer"]
    )


def test_a_follow_up_in_a_thread_sees_the_first_runs_findings(runs: Runs) -> None:
    first = finished(
        runs,
        {
            "message": "Verify identity: Rahul Sharma, PAN ABCDE1234F",
            "workflow": "kyc-verification",
        },
    )
    follow_up = finished(
        runs,
        {"message": "Also check his employment history", "thread_id": first["thread_id"]},
    )
    report = follow_up["report"]
    assert report["subject"]["name"] == "Rahul Sharma"  # said in the first message
    assert report["earlier_runs"] == [
        {"run_id": first["id"], "answer": first["answer"], "verdict": "not_verified"}
    ]
    # The identifiers said before are checked again, by the follow-up's own checks.
    assert [c["input"] for c in report["checks"]] == ["ABCDE1234F"]


def test_the_operator_sets_the_prices(fast_settings: Settings, tenants: Tenants) -> None:
    prices = {"pan_verification": Decimal("3.5"), "sanctions_screening": Decimal(0)}
    settings = fast_settings.model_copy(
        update={"verify_sanctions_list": sample_list_path(), "verify_prices": prices}
    )
    with serve(settings) as live, httpx.Client(base_url=live.url, timeout=60) as client:
        run = finished(
            Runs(client, tenants.key("acme")), {"message": "Verify Asha Rao, PAN ABCPR1234K"}
        )
    billed = {call["name"]: (call["billed"], call["credits"]) for call in run["tool_calls"]}
    assert billed == {"pan_verification": (True, 3.5), "sanctions_screening": (True, 0)}
    assert run["credits_used"] == 3.5
