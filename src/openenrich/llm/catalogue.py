"""Which providers OpenEnrich talks to and which model names it accepts.

The catalogue is data (`catalogue.toml` in this package, plus an operator's file of the
same shape named by `OPENENRICH_LLM_CATALOGUE_PATH`). A model is named bare (`gpt-4o-mini`:
the provider is whichever lists it) or as `provider::model` (`openai::gpt-4o`); the
`openai_compatible` provider takes any model name, since its server decides.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from openenrich.errors import BadRequest

Api = Literal["openai", "anthropic", "google"]
SEPARATOR = "::"


@dataclass(frozen=True, slots=True)
class Provider:
    id: str  # openai, anthropic, google, perplexity, deepseek, openai_compatible
    label: str
    api: Api
    key_name: str  # OPENAI: how keys, settings and errors name it
    base_url: str
    models: tuple[str, ...]
    aliases: tuple[str, ...] = ()
    any_model: bool = False
    native_json: bool = True  # the API takes a JSON Schema for its answer


@dataclass(frozen=True, slots=True)
class ModelRef:
    provider: Provider
    name: str

    @property
    def key(self) -> str:
        """The composite key, `provider::model`."""
        return f"{self.provider.id}{SEPARATOR}{self.name}"


class UnknownModel(BadRequest):
    code = "unknown_model"


class UnknownProvider(BadRequest):
    code = "unknown_provider"


class Catalogue:
    def __init__(self, providers: dict[str, Provider]) -> None:
        self.providers = providers
        self._by_model: dict[str, Provider] = {}
        for provider in providers.values():
            for model in provider.models:
                self._by_model.setdefault(model, provider)
        self._by_key_name: dict[str, Provider] = {}
        for provider in providers.values():
            for name in (provider.key_name, *provider.aliases, provider.id.upper()):
                self._by_key_name[name] = provider

    @classmethod
    def load(cls, extra: Path | None = None) -> Catalogue:
        data = tomllib.loads(resources.files(__package__).joinpath("catalogue.toml").read_text())
        providers = {pid: _provider(pid, entry) for pid, entry in data["providers"].items()}
        if extra is not None:
            for pid, entry in tomllib.loads(extra.read_text())["providers"].items():
                known = providers.get(pid)
                if known is None:
                    providers[pid] = _provider(pid, entry)
                else:
                    models = tuple(dict.fromkeys((*known.models, *entry.get("models", ()))))
                    providers[pid] = _provider(pid, {**_as_entry(known), **entry, "models": models})
        return cls(providers)

    def allowed(self) -> list[str]:
        return [model for provider in self.providers.values() for model in provider.models]

    def resolve(self, name: str) -> ModelRef:
        """The model `name` means; UnknownModel (400, naming the allowed models) otherwise."""
        if SEPARATOR in name:
            provider_id, model = name.split(SEPARATOR, 1)
            provider = self.providers.get(provider_id)
            if provider is not None and model and (provider.any_model or model in provider.models):
                return ModelRef(provider, model)
        else:
            found = self._by_model.get(name)
            if found is not None:
                return ModelRef(found, name)
        raise UnknownModel(
            f"Unknown model '{name}'. Allowed models: {', '.join(self.allowed())}; "
            "or 'provider::model' with one of those, or 'openai_compatible::<any model>'",
            extra={"allowed_models": self.allowed()},
        )

    def provider_for_key_name(self, name: str) -> Provider:
        """The provider a key name (`OPENAI`, `gemini`, `openai_compatible`) stands for."""
        provider = self._by_key_name.get(name.upper())
        if provider is None:
            known = sorted({p.key_name for p in self.providers.values()} | {"FIRECRAWL"})
            raise UnknownProvider(f"Unknown provider '{name}'. Known providers: {', '.join(known)}")
        return provider


def _provider(provider_id: str, entry: dict[str, Any]) -> Provider:
    return Provider(
        id=provider_id,
        label=entry.get("label", provider_id),
        api=entry.get("api", "openai"),
        key_name=entry.get("key_name", provider_id.upper()),
        base_url=entry.get("base_url", ""),
        models=tuple(entry.get("models", ())),
        aliases=tuple(entry.get("aliases", ())),
        any_model=bool(entry.get("any_model", False)),
        native_json=bool(entry.get("native_json", True)),
    )


def _as_entry(provider: Provider) -> dict[str, Any]:
    return {
        "label": provider.label,
        "api": provider.api,
        "key_name": provider.key_name,
        "base_url": provider.base_url,
        "aliases": list(provider.aliases),
        "any_model": provider.any_model,
        "native_json": provider.native_json,
    }


@cache
def load_catalogue(extra: Path | None = None) -> Catalogue:
    return Catalogue.load(extra)
