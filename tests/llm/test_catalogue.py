"""The model catalogue: bare names, composite keys, the allow-list, operator additions."""

from __future__ import annotations

from pathlib import Path

import pytest

from openenrich.errors import Surface, render
from openenrich.llm.catalogue import Catalogue, UnknownModel
from openenrich.llm.keys import MissingProviderKey


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("gpt-4o-mini", "openai::gpt-4o-mini"),
        ("o4-mini", "openai::o4-mini"),
        ("gemini-2.5-flash", "google::gemini-2.5-flash"),
        ("gemini-2.0-flash", "google::gemini-2.0-flash"),
        ("sonar-pro", "perplexity::sonar-pro"),
        ("deepseek-chat", "deepseek::deepseek-chat"),
        ("claude-sonnet-4-5-20250514", "anthropic::claude-sonnet-4-5-20250514"),
        ("anthropic::claude-sonnet-4-5-20250514", "anthropic::claude-sonnet-4-5-20250514"),
        ("openai::gpt-4o", "openai::gpt-4o"),
        ("openai_compatible::llama3.1:8b", "openai_compatible::llama3.1:8b"),
        (
            "openai_compatible::Qwen/Qwen2.5-7B-Instruct",
            "openai_compatible::Qwen/Qwen2.5-7B-Instruct",
        ),
    ],
)
def test_names_resolve(name: str, key: str) -> None:
    assert Catalogue.load().resolve(name).key == key


@pytest.mark.parametrize(
    "name",
    [
        "gemini-2.0-flash-exp",
        "gpt-5-turbo",
        "openai::llama3",
        "nope::gpt-4o",
        "openai::",
        "openai_compatible::",
        "",
    ],
)
def test_other_names_are_refused_naming_the_allowed_ones(name: str) -> None:
    with pytest.raises(UnknownModel) as caught:
        Catalogue.load().resolve(name)
    error = caught.value
    assert error.status_code == 400
    assert "Allowed models: gpt-4o, gpt-4o-mini, gpt-4.1" in error.message
    assert "gemini-2.0-flash," in error.message
    assert "openai_compatible::<any model>" in error.message
    status, body = render(Surface.LEADS, error)
    assert status == 400
    assert body["error"] == error.message
    assert "sonar-pro" in body["allowed_models"]


def test_an_operator_adds_models_and_providers(tmp_path: Path) -> None:
    extra = tmp_path / "models.toml"
    extra.write_text(
        """
[providers.openai]
models = ["gpt-4.5-preview"]

[providers.groq]
label = "Groq"
api = "openai"
key_name = "GROQ"
base_url = "https://api.groq.com/openai/v1"
models = ["llama-3.3-70b-versatile"]
"""
    )
    catalogue = Catalogue.load(extra)
    assert catalogue.resolve("gpt-4.5-preview").key == "openai::gpt-4.5-preview"
    assert catalogue.resolve("gpt-4o").key == "openai::gpt-4o"  # the built-ins stay
    groq = catalogue.resolve("llama-3.3-70b-versatile")
    assert (groq.key, groq.provider.key_name) == ("groq::llama-3.3-70b-versatile", "GROQ")
    assert catalogue.provider_for_key_name("groq").id == "groq"


def test_missing_key_message_in_every_surface() -> None:
    error = MissingProviderKey("OPENAI")
    assert render(Surface.LEADS, error) == (400, {"error": "No API key found for OPENAI"})
    assert render(Surface.ENTITIES, error) == (400, {"detail": "No API key found for OPENAI"})
    status, body = render(Surface.VERIFY, error)
    assert status == 400
    assert body["error"]["message"] == "No API key found for OPENAI"
