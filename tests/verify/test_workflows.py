"""Workflows are Markdown procedures: front matter the engine reads (checks in order, which
are required, what the report emphasises, whether a plan is proposed first) above a
procedure a person can read. Built-ins ship as such files; an organisation's own are
checked when saved and override a built-in of the same slug."""

from __future__ import annotations

from typing import Any

import pytest

from helpers.tenants import Tenants, bearer
from openenrich.verify.tools import REGISTRY
from openenrich.verify.workflows import BUILT_IN, InvalidWorkflow, front_matter
from verify.conftest import Runs

PROCEDURE = """---
description: PAN and phone, a plan first
checks: [pan_verification, mobile_verification]
required: [pan_verification]
emphasis: [the PAN's holder type]
plan: true
---
# Loan pre-check

1. Check the PAN. 2. Check the phone number.
"""


def test_every_built_in_is_a_procedure_with_checks_the_registry_has() -> None:
    assert next(iter(BUILT_IN)) == "kyc-verification"
    for spec in BUILT_IN.values():
        assert spec.content.startswith("---\n")
        assert "\n# " in spec.content  # the procedure, for a person and for the agent
        assert spec.checks
        assert set(spec.checks) <= set(REGISTRY)
        assert set(spec.required) <= set(spec.checks)
    kyc = BUILT_IN["kyc-verification"]
    assert kyc.checks[0] == "pan_verification"
    assert kyc.required == ("pan_verification",)
    assert kyc.emphasis
    assert BUILT_IN["business-due-diligence"].plan is True


@pytest.mark.parametrize(
    ("matter", "message"),
    [
        ("checks: [pan_verification, palm_reading]", "checks: 'palm_reading' is not a check"),
        ("checks: []", "checks: List should have at least 1 item"),
        ("checks: [pan_verification]\nplan: maybe", "plan: Input should be a valid boolean"),
        ("checks: [pan_verification]\ncolour: red", "colour: Extra inputs are not permitted"),
        (
            "checks: [pan_verification]\nrequired: [email_verification]",
            "required: 'email_verification' is not one of the workflow's checks",
        ),
        ("checks: [pan_verification", "front matter is not YAML"),
        ("- pan_verification", "front matter must be a mapping"),
    ],
)
def test_bad_front_matter_says_which_field(matter: str, message: str) -> None:
    with pytest.raises(InvalidWorkflow) as raised:
        front_matter(f"---\n{matter}\n---\n# A procedure\n")
    assert str(raised.value).startswith(message)


def save(runs: Runs, slug: str, content: str, method: str = "post") -> Any:
    path = "/api/v1/workflows" + (f"/{slug}" if method == "patch" else "")
    body = {"content": content} | ({"slug": slug} if method == "post" else {})
    return getattr(runs.client, method)(path, headers=runs.headers, json=body)


def test_a_custom_workflow_is_checked_when_saved(runs: Runs) -> None:
    refused = save(runs, "loan-pre-check", PROCEDURE.replace("mobile_verification", "palm"))
    assert refused.status_code == 422
    assert refused.json()["error"] == {
        "code": "invalid_request",
        "message": "content: checks: 'palm' is not a check (GET /api/v1/workflows)",
    }
    created = save(runs, "loan-pre-check", PROCEDURE)
    assert created.status_code == 201, created.text
    assert created.json()["checks"] == ["pan_verification", "mobile_verification"]
    assert created.json()["description"] == "PAN and phone, a plan first"
    bad_update = save(runs, "loan-pre-check", "---\nplan: yes please\n---\n", method="patch")
    assert bad_update.status_code == 422
    assert "content: checks: Field required" in bad_update.json()["error"]["message"]


def test_a_workflow_that_plans_first_waits_for_approval_however_short(runs: Runs) -> None:
    assert save(runs, "loan-pre-check", PROCEDURE).status_code == 201
    run = runs.create({"message": "PAN ABCPS1234K", "workflow": "loan-pre-check"}).json()
    parked = runs.until(run["id"], "requires_approval")
    assert parked["plan"]["tasks"] == [
        {"goal": "Run pan_verification on ABCPS1234K", "tool": "pan_verification"}
    ]


def test_a_required_check_without_its_identifier_is_not_verified(runs: Runs) -> None:
    overriding = PROCEDURE.replace("plan: true", "plan: false")
    assert save(runs, "kyc-verification", overriding).status_code == 201
    run = runs.create(
        {"message": "Verify Asha Rao, +91 98765 43210", "workflow": "kyc-verification"}
    ).json()
    done = runs.until(run["id"], "completed")
    report = done["report"]
    assert report["emphasis"] == ["the PAN's holder type"]  # the organisation's, not ours
    assert [c["tool"] for c in report["checks"]] == ["mobile_verification"]
    assert report["not_checked"] == [{"kind": "pan", "input": "", "reason": "not given"}]
    assert report["verdict"] == "partially_verified"
    assert "No PAN was given, and the workflow requires one." in done["answer"]


def test_a_workflow_is_read_with_its_markdown(runs: Runs, tenants: Tenants) -> None:
    built_in = runs.client.get("/api/v1/workflows/kyc-verification", headers=runs.headers)
    assert built_in.status_code == 200, built_in.text
    assert built_in.json()["scope"] == "built-in"
    assert built_in.json()["content"].startswith("---\ndescription:")
    assert save(runs, "kyc-verification", PROCEDURE).status_code == 201
    own = runs.client.get("/api/v1/workflows/kyc-verification", headers=runs.headers).json()
    assert (own["scope"], own["content"]) == ("org", PROCEDURE)
    # Another organisation still reads the built-in; an unknown slug is the runs' 404.
    other = bearer(tenants.key("globex"))
    theirs = runs.client.get("/api/v1/workflows/kyc-verification", headers=other).json()
    assert theirs["scope"] == "built-in"
    missing = runs.client.get("/api/v1/workflows/nope", headers=runs.headers)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "workflow_not_found"
