"""`Gateway.complete()` against a fake provider on loopback, through each provider's real
SDK: structured output validated and re-asked, retries and backoff, tool calls, limits,
exact cost, records and the cache."""

from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from genai_prices import Usage as PriceUsage
from genai_prices import calc_price
from sqlalchemy import select

from fixtures.fake_llm import Answer, FakeLLM
from helpers.llm import with_gateway
from helpers.tenants import Tenants
from openenrich.config import Settings
from openenrich.errors import BadRequest
from openenrich.llm import keys
from openenrich.llm.catalogue import UnknownModel
from openenrich.llm.gateway import (
    Gateway,
    InvalidOutput,
    ProviderError,
    Result,
    Tool,
    TruncatedOutput,
)
from openenrich.llm.keys import MissingProviderKey
from openenrich.llm.models import LlmCall
from openenrich.secretbox import load_secret_box
from openenrich.tenancy.tenant import Tenant

SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "founded": {"type": "integer"}},
    "required": ["city", "founded"],
    "additionalProperties": False,
}


def price(model: str, provider: str, input_tokens: int = 100, output_tokens: int = 20) -> Decimal:
    usage = PriceUsage(input_tokens=input_tokens, output_tokens=output_tokens)
    return Decimal(str(calc_price(usage, model, provider_id=provider).total_price))


def complete(
    settings: Settings, tenant: Tenant, model: str, prompt: str = "Where?", **options: Any
) -> Result:
    async def work(gateway: Gateway) -> Result:
        return await gateway.complete(tenant, model, prompt, **options)

    return with_gateway(settings, work)


def test_structured_output_through_openai(
    llm_settings: Settings, tenant: Tenant, fake: FakeLLM
) -> None:
    fake.script(Answer(json={"city": "Boston", "founded": 1630}))
    result = complete(llm_settings, tenant, "gpt-4o-mini", output_schema=SCHEMA)
    assert result.value == {"city": "Boston", "founded": 1630}
    assert result.model == "openai::gpt-4o-mini"
    assert (result.attempts, result.usage.input_tokens, result.usage.output_tokens) == (1, 100, 20)
    assert result.cost == price("gpt-4o-mini", "openai") > 0
    assert result.cost_known
    request = fake.requests()[0]
    assert request["model"] == "gpt-4o-mini"
    assert request["response_format"]["type"] == "json_schema"
    assert request["response_format"]["json_schema"]["schema"]["required"] == ["city", "founded"]
    assert fake.received[0].headers["authorization"] == "Bearer sk-server-openai"


def test_an_invalid_answer_is_asked_again_with_the_errors(
    llm_settings: Settings, tenant: Tenant, fake: FakeLLM
) -> None:
    fake.script(
        Answer(json={"city": "Boston", "founded": "sixteen thirty"}),
        Answer(text="not json at all"),
        Answer(json={"city": "Boston", "founded": 1630}),
    )
    result = complete(llm_settings, tenant, "gpt-4o", output_schema=SCHEMA)
    assert result.value == {"city": "Boston", "founded": 1630}
    assert result.attempts == 3
    assert result.usage.input_tokens == 300
    assert result.usage.output_tokens == 60
    assert result.cost == 3 * price("gpt-4o", "openai")
    second, third = fake.requests()[1:]
    feedback = second["messages"][-1]["content"]
    assert "founded: 'sixteen thirty' is not of type 'integer'" in feedback
    assert "the answer is not JSON" in third["messages"][-1]["content"]
    # The conversation carries the model's wrong answers, so it can correct itself.
    assert [m["role"] for m in third["messages"]][-4:] == ["assistant", "user", "assistant", "user"]


def test_re_asks_are_bounded(llm_settings: Settings, tenant: Tenant, fake: FakeLLM) -> None:
    settings = llm_settings.model_copy(update={"llm_schema_retries": 1})
    fake.script(Answer(json={"city": 1}), Answer(json={"city": 2}), Answer(json={"city": 3}))
    with pytest.raises(InvalidOutput, match="after 2 attempts") as caught:
        complete(settings, tenant, "gpt-4o-mini", output_schema=SCHEMA)
    assert caught.value.status_code == 502
    assert len(fake.received) == 2


def test_a_truncated_answer_fails_fast(
    llm_settings: Settings, tenant: Tenant, fake: FakeLLM
) -> None:
    fake.script(Answer(text='{"city": "Bos', truncated=True))
    with pytest.raises(TruncatedOutput, match="token limit"):
        complete(llm_settings, tenant, "gpt-4o-mini", output_schema=SCHEMA, max_tokens=5)
    assert len(fake.received) == 1  # not re-asked: the same limit would cut it again
    assert fake.requests()[0]["max_completion_tokens"] == 5


def test_429_is_retried_after_retry_after(
    llm_settings: Settings, tenant: Tenant, fake: FakeLLM
) -> None:
    fake.script(Answer(status=429, headers={"retry-after": "1"}), Answer(text="done"))
    started = time.monotonic()
    result = complete(llm_settings, tenant, "gpt-4o-mini")
    assert result.value == "done"
    assert result.attempts == 2
    gap = fake.received[1].at - fake.received[0].at
    assert 0.9 <= gap < 1.8, gap
    assert time.monotonic() - started >= 0.9
    assert result.usage.requests == 1  # the 429 used no tokens
    assert result.cost == price("gpt-4o-mini", "openai")


def test_5xx_timeouts_and_malformed_bodies_are_retried_with_backoff(
    llm_settings: Settings, tenant: Tenant, fake: FakeLLM
) -> None:
    settings = llm_settings.model_copy(update={"llm_timeout_seconds": 0.5})
    fake.script(
        Answer(status=500),
        Answer(status=503),
        Answer(malformed=True),
        Answer(text="late", delay=1.5),  # past the timeout
        Answer(text="done"),
    )
    result = complete(settings, tenant, "gpt-4o-mini")
    assert result.value == "done"
    assert result.attempts == 5


def test_retries_are_bounded_and_client_errors_are_not_retried(
    llm_settings: Settings, tenant: Tenant, fake: FakeLLM
) -> None:
    settings = llm_settings.model_copy(update={"llm_max_retries": 2})
    fake.script(*[Answer(status=500)] * 3)
    with pytest.raises(ProviderError, match="answered 500"):
        complete(settings, tenant, "gpt-4o-mini")
    assert len(fake.received) == 3
    fake.script(Answer(status=400, error_body={"error": {"message": "bad schema", "type": "x"}}))
    with pytest.raises(ProviderError, match="answered 400"):
        complete(settings, tenant, "gpt-4o-mini")
    assert len(fake.received) == 4


def test_backoff_grows_exponentially_with_jitter(llm_settings: Settings) -> None:
    settings = llm_settings.model_copy(
        update={"llm_backoff_seconds": 0.1, "llm_backoff_max_seconds": 0.5}
    )

    async def work(gateway: Gateway) -> list[list[float]]:
        return [[gateway._delay(attempt, None) for _ in range(200)] for attempt in range(5)]

    delays = with_gateway(settings, work)
    ceilings = [0.1, 0.2, 0.4, 0.5, 0.5]
    for attempt, ceiling in enumerate(ceilings):
        assert all(0 <= d <= ceiling for d in delays[attempt])
        assert max(delays[attempt]) > ceiling * 0.8  # jitter spans the range
        assert len(set(delays[attempt])) > 150

    async def http_date(gateway: Gateway) -> float:
        return gateway._delay(0, {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"})

    assert with_gateway(settings, http_date) == 0  # a date in the past: retry now


def test_tool_calls_run_and_the_model_sees_their_results(
    llm_settings: Settings, tenant: Tenant, fake: FakeLLM
) -> None:
    seen: list[dict[str, Any]] = []

    async def lookup(arguments: dict[str, Any]) -> dict[str, Any]:
        seen.append(arguments)
        return {"population": 650_000}

    tool = Tool(
        "lookup_city",
        "Facts about a city",
        {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
        lookup,
    )
    fake.script(
        Answer(tool_calls=[("lookup_city", {"name": "Boston"})]),
        Answer(json={"city": "Boston", "founded": 1630}),
    )
    result = complete(llm_settings, tenant, "gpt-4.1", output_schema=SCHEMA, tools=[tool])
    assert seen == [{"name": "Boston"}]
    assert result.tool_calls == [("lookup_city", {"name": "Boston"})]
    assert result.attempts == 2
    first, second = fake.requests()
    assert first["tools"][0]["function"]["name"] == "lookup_city"
    tool_message = second["messages"][-1]
    assert tool_message["role"] == "tool"
    assert json.loads(tool_message["content"]) == {"population": 650000}


@pytest.mark.parametrize(
    ("model", "provider", "path"),
    [
        ("claude-haiku-4-5", "anthropic", "/v1/messages"),
        ("anthropic::claude-sonnet-4-5-20250514", "anthropic", "/v1/messages"),
        ("gemini-2.5-flash", "google", "/v1beta/models/gemini-2.5-flash:generateContent"),
    ],
)
def test_anthropic_and_gemini_through_their_sdks(
    llm_settings: Settings, tenant: Tenant, fake: FakeLLM, model: str, provider: str, path: str
) -> None:
    name = model.split("::")[-1]
    fake.script(
        Answer(json={"city": "Boston"}),  # invalid: re-asked
        Answer(json={"city": "Boston", "founded": 1630}),
    )
    result = complete(llm_settings, tenant, model, output_schema=SCHEMA)
    assert result.value == {"city": "Boston", "founded": 1630}
    assert result.model == f"{provider}::{name}"
    assert result.attempts == 2
    assert result.cost == 2 * price(name, provider)
    assert [r.path.split("?")[0] for r in fake.received] == [path, path]
    headers = fake.received[0].headers
    if provider == "anthropic":
        assert headers.get("x-api-key", headers.get("authorization")) in (
            "sk-ant-server",
            "Bearer sk-ant-server",
        ), headers
    else:
        assert headers["x-goog-api-key"] == "google-server"


@pytest.mark.parametrize("model", ["claude-haiku-4-5", "gemini-2.0-flash"])
def test_tool_calls_on_anthropic_and_gemini(
    llm_settings: Settings, tenant: Tenant, fake: FakeLLM, model: str
) -> None:
    async def add(arguments: dict[str, Any]) -> int:
        return int(arguments["a"]) + int(arguments["b"])

    tool = Tool(
        "add",
        "Adds two numbers",
        {
            "type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
            "required": ["a", "b"],
        },
        add,
    )
    fake.script(Answer(tool_calls=[("add", {"a": 2, "b": 3})]), Answer(text="5"))
    result = complete(llm_settings, tenant, model, "2+3?", tools=[tool])
    assert result.value == "5"
    assert result.tool_calls == [("add", {"a": 2, "b": 3})]
    assert "5" in json.dumps(fake.requests()[1])


@pytest.mark.parametrize(
    ("setting", "slots"), [("llm_tenant_concurrency", 2), ("llm_provider_concurrency", 3)]
)
def test_concurrency_is_limited_per_tenant_and_per_provider(
    llm_settings: Settings, tenant: Tenant, fake: FakeLLM, setting: str, slots: int
) -> None:
    settings = llm_settings.model_copy(update={setting: slots})
    fake.delay = 0.3

    async def work(gateway: Gateway) -> None:
        await asyncio.gather(*(gateway.complete(tenant, "gpt-4o-mini", "hi") for _ in range(6)))

    started = time.monotonic()
    with_gateway(settings, work)
    assert time.monotonic() - started >= 0.3 * (6 // slots) - 0.05  # in waves of `slots`
    arrivals = sorted(r.at for r in fake.received)
    for n in range(len(arrivals) - slots):
        assert arrivals[n + slots] - arrivals[n] >= 0.25  # never more than `slots` in flight


def test_unknown_models_and_missing_keys_are_refused_up_front(
    settings: Settings, tenant: Tenant
) -> None:
    def ready(model: str) -> object:
        async def work(gateway: Gateway) -> object:
            return await gateway.ready(tenant, model)

        return with_gateway(settings, work)

    with pytest.raises(UnknownModel, match="gpt-4o-mini"):
        ready("gemini-2.0-flash-exp")
    with pytest.raises(MissingProviderKey, match=r"^No API key found for OPENAI$"):
        ready("gpt-4o")
    with pytest.raises(MissingProviderKey, match=r"^No API key found for PERPLEXITY$"):
        ready("sonar-pro")
    with pytest.raises(MissingProviderKey, match=r"^No API key found for GOOGLE$"):
        ready("google::gemini-2.5-pro")


def test_a_self_hosted_model_costs_zero_flagged_unknown(
    llm_settings: Settings, tenant: Tenant, fake: FakeLLM
) -> None:
    settings = llm_settings.model_copy(
        update={"provider_openai_compatible_base_url": f"{fake.url}/v1"}
    )
    result = complete(settings, tenant, "openai_compatible::llama3.1:8b")
    assert result.value == "ok"
    assert (result.cost, result.cost_known) == (Decimal(0), False)
    assert fake.requests()[0]["model"] == "llama3.1:8b"


def test_every_call_is_recorded(llm_settings: Settings, tenant: Tenant, fake: FakeLLM) -> None:
    fake.script(Answer(status=429, headers={"retry-after": "0"}), Answer(text="one"))
    fake.script(*[Answer(status=400)])

    async def work(gateway: Gateway) -> list[LlmCall]:
        await gateway.complete(tenant, "gpt-4o", "first", job_id="job_1")
        with pytest.raises(ProviderError):
            await gateway.complete(tenant, "gpt-4o", "second")
        await gateway.recorder.flush()
        async with gateway.database.session() as session:
            return list(await session.scalars(select(LlmCall).order_by(LlmCall.id)))

    calls = with_gateway(llm_settings, work)
    assert [(c.model, c.status, c.attempts, c.job_id) for c in calls] == [
        ("openai::gpt-4o", "ok", 2, "job_1"),
        ("openai::gpt-4o", "provider_error", 1, None),
    ]
    assert (calls[0].input_tokens, calls[0].output_tokens) == (100, 20)
    assert calls[0].cost_usd == price("gpt-4o", "openai")
    assert calls[0].org_id == tenant.org_id
    assert calls[0].latency_ms >= 0


def test_the_response_cache(llm_settings: Settings, tenant: Tenant, fake: FakeLLM) -> None:
    settings = llm_settings.model_copy(update={"llm_cache_ttl_seconds": 60})
    fake.script(*[Answer(json={"city": "Boston", "founded": 1630})] * 2)

    async def work(gateway: Gateway) -> list[Result]:
        return [
            await gateway.complete(tenant, "gpt-4o-mini", "Where?", output_schema=SCHEMA),
            await gateway.complete(tenant, "gpt-4o-mini", "Where?", output_schema=SCHEMA),
            await gateway.complete(
                tenant, "gpt-4o-mini", "Where?", output_schema=SCHEMA, temperature=0.5
            ),
        ]

    first, second, third = with_gateway(settings, work)
    assert second.value == first.value
    assert second.cached
    assert not first.cached
    assert second.cost == 0
    assert second.attempts == 0
    assert not third.cached  # another temperature is another question
    assert len(fake.received) == 2


def test_the_cache_is_off_by_default(llm_settings: Settings, tenant: Tenant, fake: FakeLLM) -> None:
    async def work(gateway: Gateway) -> None:
        for _ in range(2):
            await gateway.complete(tenant, "gpt-4o-mini", "same")

    with_gateway(llm_settings, work)
    assert len(fake.received) == 2


@pytest.mark.parametrize(
    ("key_name", "model", "path"),
    [("ANTHROPIC", "claude-haiku-4-5", ""), ("OPENAI", "gpt-4o-mini", "/v1")],
)
def test_a_tenant_base_url_passes_the_ssrf_guard(
    settings: Settings,
    tenant: Tenant,
    tenants: Tenants,
    fake: FakeLLM,
    key_name: str,
    model: str,
    path: str,
) -> None:
    """A base URL a tenant stores is a user-given URL: private addresses are refused unless
    the operator allows that host, also when the URL was stored while they were allowed."""

    async def store(session: object) -> None:
        await keys.put_key(
            session,  # type: ignore[arg-type]
            load_secret_box(settings),
            tenant,
            key_name,
            "sk-tenant-0123456789",
            f"{fake.url}{path}",
            allow_private=True,  # the operator allowed private URLs then, and no longer does
        )

    tenants.run(store)
    with pytest.raises(BadRequest, match="non-public address"):
        complete(settings, tenant, model)
    assert fake.received == []

    allowed = settings.model_copy(update={"allowed_private_hosts": [f"127.0.0.1:{fake.port}"]})
    assert complete(allowed, tenant, model).value == "ok"
    headers = fake.received[0].headers
    assert "sk-tenant-0123456789" in (
        headers.get("x-api-key", "") + headers.get("authorization", "")
    )


def test_a_model_genai_prices_does_not_know_costs_zero_flagged(
    llm_settings: Settings, tenant: Tenant, fake: FakeLLM, tmp_path: Path
) -> None:
    extra = tmp_path / "models.toml"
    extra.write_text('[providers.openai]\nmodels = ["acme-finetune-7"]\n')
    settings = llm_settings.model_copy(update={"llm_catalogue_path": extra})
    result = complete(settings, tenant, "acme-finetune-7")
    assert result.model == "openai::acme-finetune-7"
    assert (result.cost, result.cost_known) == (Decimal(0), False)
    assert result.usage.input_tokens == 100
