"""The registry: what is registered, and how bad options are refused (the message a
stream's save answers with)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from openenrich.config import Settings
from openenrich.enrichers import registry
from openenrich.enrichers.registry import (
    Enricher,
    EnricherEnv,
    EnricherOptions,
    OutputColumn,
    register,
)
from openenrich.errors import BadRequest

BUILTINS = [
    "currency",
    "email_domain",
    "geo_ip",
    "identifiers",
    "mask",
    "phone",
    "session",
    "url",
    "user_agent",
]


def env() -> EnricherEnv:
    return EnricherEnv(Settings())


def test_the_builtins_are_registered_with_a_version_and_description() -> None:
    names = [enricher.name for enricher in registry.registered()]
    assert set(BUILTINS) <= set(names)
    for name in BUILTINS:
        enricher = registry.get(name)
        assert enricher.version >= 1
        assert enricher.description


def test_an_unknown_name_is_a_key_error_and_a_bad_request() -> None:
    with pytest.raises(KeyError):
        registry.get("nope")
    with pytest.raises(BadRequest, match=r"unknown enricher 'nope' \(known: currency, "):
        registry.build("nope", None, env())


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("url", {"fild": "page"}, "enricher 'url': options.fild: unknown option"),
        ("url", {"field": 3}, "enricher 'url': options.field: Input should be a valid string"),
        ("session", {"gap_minutes": 0}, "enricher 'session': options.gap_minutes: Input should be greater than 0"),
        ("currency", {"target_currency": "XYZ"}, "enricher 'currency': options.target_currency: Value error, 'XYZ' is not an ISO 4217 currency code"),
        ("currency", {"target_currency": "EUR"}, "enricher 'currency': target_currency needs rates"),
        ("mask", {"fields": ["email"], "method": "hash"}, "enricher 'mask': masking by hash needs the setting OPENENRICH_MASK_SALT"),
        ("mask", {"method": "redact"}, "enricher 'mask': name `fields`, `kinds`, or both"),
        ("identifiers", {}, "enricher 'identifiers': options.field: Field required"),
        ("phone", {"default_region": "QQ"}, "enricher 'phone': options.default_region: Value error, 'QQ' is not a country code"),
    ],
)  # fmt: skip
def test_bad_options_are_refused_with_a_clear_message(
    name: str, options: dict[str, object], message: str
) -> None:
    with pytest.raises(BadRequest) as raised:
        registry.build(name, options, env())
    assert raised.value.message.startswith(message), raised.value.message
    assert raised.value.status_code == 400


def test_options_that_are_not_an_object_are_refused() -> None:
    with pytest.raises(BadRequest, match="enricher 'url': options must be an object"):
        registry.build("url", ["field"], env())  # type: ignore[arg-type]


@register
class Shout(Enricher):
    """A plugin's enricher, registered the way the built-ins are."""

    name = "test_shout"
    version = 2
    description = "The text, upper case"

    class Options(EnricherOptions):
        field: str = "text"

    options: Options

    def inputs(self) -> list[str]:
        return [self.options.field]

    def outputs(self) -> list[OutputColumn]:
        return [OutputColumn("shout", "string", "upper case")]

    def apply(self, table: pa.Table) -> dict[str, pa.Array]:
        import pyarrow.compute as pc

        return {"shout": pc.utf8_upper(table.column(self.options.field).combine_chunks())}


def test_a_plugin_registers_like_a_builtin() -> None:
    assert registry.get("test_shout") is Shout
    enricher = registry.build("test_shout", {"field": "t"}, env())
    assert enricher.apply(pa.table({"t": ["a", None]}))["shout"].to_pylist() == ["A", None]


def test_each_builtin_runs_on_a_batch_without_its_inputs() -> None:
    """Missing input columns are read as null: the outputs are there, null (or the
    kind's answer for null, like `direct` for no referrer)."""
    table = pa.table({"other": [1, 2]})
    options = {"identifiers": {"field": "iban"}, "mask": {"fields": ["card"]}}
    for name in BUILTINS:
        enricher = registry.build(name, options.get(name), env())
        added = enricher.apply(table)
        assert [c.name for c in enricher.outputs()] == list(added)
        for values in added.values():
            assert len(values) == 2


def test_every_builtin_and_its_columns_are_documented() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "enrichers.md").read_text()
    options = {
        "identifiers": {"field": "iban"},
        "mask": {"fields": ["card"]},
        "geo_ip": {"anonymize": True},
    }
    for name in BUILTINS:
        assert f"## `{name}`" in text
        enricher = registry.build(name, options.get(name), env())
        missing = [c.name for c in enricher.outputs() if f"`{c.name}`" not in text]
        assert missing == [], name
