"""The LLM agent path, against the fake provider on loopback: the model calls our tools
(rows, `tool_call` events, billing as the planner's), writes a schema-valid verdict and
answer, is billed for its tokens, and sees the thread's earlier answers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal

import httpx
import jsonschema
import pytest

from fixtures.fake_llm import INPUT_TOKENS, OUTPUT_TOKENS, Answer, FakeLLM
from helpers.tenants import Tenants
from openenrich.config import Settings
from openenrich.verify.report import REPORT_SCHEMA
from openenrich.verify.sanctions import sample_list_path
from verify.conftest import QUICKSTART, Runs, serve
from verify.test_events import events_of


@pytest.fixture
def fake() -> Iterator[FakeLLM]:
    with FakeLLM() as server:
        yield server


@pytest.fixture
def runs(fast_settings: Settings, tenants: Tenants, fake: FakeLLM) -> Iterator[Runs]:
    settings = fast_settings.model_copy(
        update={
            "provider_openai_api_key": "sk-server-openai",
            "provider_openai_base_url": f"{fake.url}/v1",
            "verify_agent_model": "gpt-4.1",
            "verify_agent_credits_per_1k_tokens": Decimal("0.5"),
            "verify_sanctions_list": sample_list_path(),
            "approval_min_checks": 20,
        }
    )
    with serve(settings) as live, httpx.Client(base_url=live.url, timeout=60) as client:
        yield Runs(client, tenants.key("acme"))


VERDICT = {
    "verdict": "not_verified",
    "reasons": ["The PAN is not valid."],
    "answer": "Rahul Sharma: not verified. PAN ABCDE1234F is not valid: 'D' is no holder type.",
}


def test_the_agent_calls_our_tools_and_writes_the_verdict(runs: Runs, fake: FakeLLM) -> None:
    fake.script(
        Answer(tool_calls=[("pan_verification", {"value": "ABCDE1234F"})]),
        Answer(tool_calls=[("sanctions_screening", {"value": "Rahul Sharma"})]),
        Answer(json=VERDICT),
    )
    run = runs.create(QUICKSTART).json()
    done = runs.until(run["id"], "completed")

    # The model was told the procedure and the request, and offered the workflow's tools.
    first = fake.requests()[0]
    system = first["messages"][0]["content"]
    assert "# KYC verification (India)" in system
    assert "Rahul Sharma" in first["messages"][-1]["content"]
    offered = {tool["function"]["name"] for tool in first["tools"]}
    assert {"pan_verification", "mobile_verification", "sanctions_screening"} <= offered
    # Our tool's answer went back to it.
    returned = json.loads(fake.requests()[1]["messages"][-1]["content"])
    assert returned["status"] == "failed"
    assert "fourth character 'D' is not a holder type" in returned["summary"]

    calls = {call["name"]: call for call in done["tool_calls"]}
    assert (calls["pan_verification"]["status"], calls["pan_verification"]["billed"]) == (
        "failed",
        False,
    )
    assert calls["sanctions_screening"]["credits"] == 1
    tokens = 3 * (INPUT_TOKENS + OUTPUT_TOKENS)  # three requests
    assert calls["agent"]["credits"] == tokens * 0.5 / 1000
    assert done["credits_used"] == sum(call["credits"] for call in done["tool_calls"])

    report = done["report"]
    jsonschema.validate(report, REPORT_SCHEMA)
    assert (report["verdict"], report["reasons"]) == ("not_verified", ["The PAN is not valid."])
    assert report["agent"]["model"].endswith("gpt-4.1")
    assert [c["tool"] for c in report["checks"]] == ["pan_verification"]
    assert done["answer"] == VERDICT["answer"]

    events = [e for e in events_of(runs, run["id"]) if e.event]
    names = [e.event for e in events]
    assert names.count("tool_call") == 4  # started and finished, for each of its calls
    deltas = [e.data["text"] for e in events if e.event == "answer.delta" and e.data]
    # Each call's sentence as it finishes, then the model's answer a sentence at a time.
    assert deltas[-2:] == ["Rahul Sharma: not verified.", VERDICT["answer"].split(". ", 1)[1]]
    assert deltas[0] == returned["summary"]


def test_a_follow_up_shows_the_agent_the_earlier_answer(runs: Runs, fake: FakeLLM) -> None:
    fake.script(Answer(json=VERDICT))
    first = runs.until(runs.create(QUICKSTART).json()["id"], "completed")
    fake.script(Answer(json={**VERDICT, "answer": "Nothing more to check."}))
    follow_up = runs.create(
        {"message": "Also check his employment history", "thread_id": first["thread_id"]}
    ).json()
    runs.until(follow_up["id"], "completed")
    prompt = fake.requests()[-1]["messages"][-1]["content"]
    assert "Earlier in this thread:" in prompt
    assert VERDICT["answer"] in prompt
