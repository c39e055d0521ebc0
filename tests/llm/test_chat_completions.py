"""The OpenAI chat-completions protocol as `ChatCompletionsModel` speaks it, seen from the
fake server's side: what each provider of that protocol is sent, and how each kind of
failure comes back."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from fixtures.fake_llm import Answer, FakeLLM
from helpers.llm import with_gateway
from openenrich.config import Settings
from openenrich.llm.chat_completions import MAX_RESPONSE_BYTES
from openenrich.llm.gateway import Gateway, ProviderError, Result
from openenrich.tenancy.tenant import Tenant

SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
}


def complete(settings: Settings, tenant: Tenant, model: str, **options: Any) -> Result:
    async def work(gateway: Gateway) -> Result:
        return await gateway.complete(tenant, model, "Where?", **options)

    return with_gateway(settings, work)


def test_the_request_body(llm_settings: Settings, tenant: Tenant, fake: FakeLLM) -> None:
    fake.script(Answer(json={"city": "Boston"}))
    result = complete(
        llm_settings,
        tenant,
        "gpt-4.1-mini",
        output_schema=SCHEMA,
        system="You answer in JSON.",
        temperature=0.2,
        max_tokens=50,
    )
    assert result.value == {"city": "Boston"}
    assert fake.received[0].path == "/v1/chat/completions"
    assert fake.received[0].headers["content-type"] == "application/json"
    assert fake.requests()[0] == {
        "model": "gpt-4.1-mini",
        "messages": [
            {"role": "system", "content": "You answer in JSON."},
            {"role": "user", "content": "Where?"},
        ],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "answer", "schema": SCHEMA},
        },
        "temperature": 0.2,
        "max_completion_tokens": 50,
    }


def test_a_provider_without_json_schemas_gets_the_schema_in_its_instructions(
    llm_settings: Settings, tenant: Tenant, fake: FakeLLM
) -> None:
    settings = llm_settings.model_copy(
        update={
            "provider_deepseek_api_key": "sk-deepseek",
            "provider_deepseek_base_url": f"{fake.url}/v1",
        }
    )
    fake.script(Answer(json={"city": "Boston"}))
    result = complete(settings, tenant, "deepseek-chat", output_schema=SCHEMA)
    assert result.value == {"city": "Boston"}
    assert result.model == "deepseek::deepseek-chat"
    request = fake.requests()[0]
    assert request["response_format"] == {"type": "json_object"}
    system = request["messages"][0]
    assert system["role"] == "system"
    assert '"required": ["city"]' in system["content"]
    assert fake.received[0].headers["authorization"] == "Bearer sk-deepseek"


def test_a_server_that_needs_no_key_gets_no_authorization(
    settings: Settings, tenant: Tenant, fake: FakeLLM
) -> None:
    local = settings.model_copy(update={"provider_openai_compatible_base_url": f"{fake.url}/v1"})
    assert complete(local, tenant, "openai_compatible::qwen2.5:7b").value == "ok"
    assert "authorization" not in fake.received[0].headers
    assert fake.received[0].headers["user-agent"].startswith("openenrich/")


def test_a_redirect_is_not_followed(llm_settings: Settings, tenant: Tenant, fake: FakeLLM) -> None:
    fake.script(Answer(status=307, headers={"location": f"{fake.url}/elsewhere"}))
    with pytest.raises(ProviderError, match="answered 307"):
        complete(llm_settings, tenant, "gpt-4o-mini")
    assert len(fake.received) == 1


def test_a_server_that_is_not_there(llm_settings: Settings, tenant: Tenant) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    settings = llm_settings.model_copy(
        update={"provider_openai_base_url": f"http://127.0.0.1:{port}/v1", "llm_max_retries": 1}
    )
    with pytest.raises(ProviderError, match=f"OpenAI failed: http://127.0.0.1:{port}/v1"):
        complete(settings, tenant, "gpt-4o-mini")


def test_an_oversized_answer_is_refused(
    llm_settings: Settings, tenant: Tenant, fake: FakeLLM
) -> None:
    settings = llm_settings.model_copy(update={"llm_max_retries": 0})
    fake.script(Answer(text="x" * (MAX_RESPONSE_BYTES + 1)))
    with pytest.raises(ProviderError, match="larger than 16 MiB"):
        complete(settings, tenant, "gpt-4o-mini")


def test_a_body_that_is_not_a_chat_completion(
    llm_settings: Settings, tenant: Tenant, fake: FakeLLM
) -> None:
    settings = llm_settings.model_copy(update={"llm_max_retries": 0})
    fake.script(Answer(status=200, error_body=None, malformed=True))
    with pytest.raises(ProviderError, match="not JSON"):
        complete(settings, tenant, "gpt-4o-mini")


def test_a_deprecated_model_is_logged_once_not_warned(
    llm_settings: Settings, tenant: Tenant, fake: FakeLLM, caplog: pytest.LogCaptureFixture
) -> None:
    """pydantic-ai knows gemini-2.5-flash is deprecated by Google; the catalogue still
    allows it (the reference lists it), so the operator is told in the log, once."""

    async def work(gateway: Gateway) -> None:
        for _ in range(2):
            await gateway.complete(tenant, "gemini-2.5-flash", "Where?")

    with caplog.at_level("WARNING", logger="openenrich.llm"):
        with_gateway(llm_settings, work)
    notices = [r.getMessage() for r in caplog.records if "deprecated" in r.getMessage()]
    assert len(notices) == 1
    assert notices[0].startswith("model google::gemini-2.5-flash is deprecated by its provider")
