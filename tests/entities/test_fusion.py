"""Fusion without a database or a model: normalisation, majorities, pluralities and ties,
nested fields, the arbiter's answers as `settle` takes them, the schema's verdict."""

from __future__ import annotations

from typing import Any

import pytest

from openenrich.entities.fusion import fuse
from openenrich.entities.normalize import NO_ANSWER, NO_HINT, Hint, normalize, plain

COMPANY: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "description": "The legal name"},
        "employees": {"type": "integer"},
        "founded": {"type": "string", "format": "date"},
        "website": {"type": "string", "format": "uri"},
        "industries": {"type": "array", "items": {"type": "string"}},
        "headquarters": {
            "type": ["object", "null"],
            "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
        },
    },
    "required": ["name"],
}


def same(*values: Any, hint: Hint = NO_HINT) -> bool:
    keys = {normalize(value, hint) for value in values}
    return len(keys) == 1 and NO_ANSWER not in keys


@pytest.mark.parametrize(
    "values",
    [
        (" Acme  Inc ", "ACME INC", "acme\tinc"),
        ("Straße", "STRASSE"),  # case folding, not lower()
        (1200, 1200.0, "1200", "1,200", "1200.00", "+1200"),
        (0.5, "0.50", ".5"),
        ("2024-03-01", "2024-03-01T00:00:00Z", "2024-03-01T00:00:00+02:00", "2024-03-01 00:00"),
        ("2024-03-01T09:30:00+01:00", "2024-03-01T08:30:00Z", "2024-03-01T08:30:00.000+00:00"),
        (
            "https://www.Example.com/",
            "http://example.com",
            "HTTPS://EXAMPLE.COM:443",
            "www.example.com",
            "https://example.com/#top",
            "Example.com",
        ),
        (
            "https://example.com/About/",
            "example.com/About",
        ),
        (["b", "a", "a"], ["A", "B"], [" a", "b", None, ""]),
        ([1, "2"], ["2.0", 1]),
        ([{"x": 1}, {"y": "A"}], [{"y": "a"}, {"x": "1"}]),
        ({"a": "X", "b": None}, {"a": "x"}),
        (True,),
    ],
)
def test_values_that_agree(values: tuple[Any, ...]) -> None:
    assert same(*values)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("02139", "2139"),  # a leading zero: a code, not a number
        ("1.2k", "1200"),  # no units guessed
        ("12%", "12"),
        (True, 1),
        (False, 0),
        ("true", True),
        ("2024-03-01", "2024-03-02"),
        ("2024-03-01T09:30:00", "2024-03-01"),
        ("https://example.com/a", "https://example.com/A"),  # paths are case-sensitive
        ("https://example.com/?q=1", "https://example.com/?q=2"),
        ("https://example.com", "https://example.org"),
        ("info@example.com", "example.com"),
        ("U.S.", "us"),
        (["a", "b"], ["a"]),
        ([{"x": 1}, {"x": 1}], [{"x": 1}]),  # objects in a list: a multiset
        ("Acme Inc", "Acme Inc."),
    ],
)
def test_values_that_differ(one: Any, other: Any) -> None:
    assert normalize(one) != normalize(other)


@pytest.mark.parametrize("value", [None, "", "   ", "\u00a0"])
def test_no_answer(value: Any) -> None:
    assert normalize(value) == NO_ANSWER


def test_the_schema_format_decides_how_a_string_is_read() -> None:
    day = Hint(format="date")
    assert same("2024-03-01", "2024-03-01T17:45:00+05:00", hint=day)
    assert not same("2024-03-01", "2024-03-01T17:45:00+05:00")
    url = Hint(format="uri")
    assert same("example.com/x", "https://www.example.com/x/", hint=url)
    assert plain(normalize("example.com/x", url)) == "example.com/x"
    assert plain(normalize(["b", "A"])) == ["a", "b"]
    assert plain(normalize("1,200.50")) == 1200.5
    assert plain(normalize(" 1,200 ")) == 1200


def test_a_majority_of_the_models_that_answered() -> None:
    results = {
        "openai::gpt-4o": {"name": "Acme Inc", "employees": "1,200", "website": "acme.com"},
        "anthropic::claude-sonnet-4-5": {"name": "ACME  inc", "employees": 1200},
        "google::gemini-2.5-pro": {"name": "Acme Corp", "employees": 950, "website": None},
    }
    fusion = fuse(results, COMPANY)
    assert fusion.disputed == {}
    fused = fusion.settle()
    name = fused.account["name"]
    assert name["value"] == "Acme Inc"  # the first model's own spelling
    assert name["decided_by"] == "majority"
    assert name["agreed"] == ["openai::gpt-4o", "anthropic::claude-sonnet-4-5"]
    assert name["confidence"] == pytest.approx(0.6667)
    assert name["tie"] is False
    assert name["candidates"] == [
        {
            "value": "Acme Inc",
            "normalized": "acme inc",
            "originals": ["Acme Inc", "ACME  inc"],
            "models": ["openai::gpt-4o", "anthropic::claude-sonnet-4-5"],
        },
        {
            "value": "Acme Corp",
            "normalized": "acme corp",
            "originals": ["Acme Corp"],
            "models": ["google::gemini-2.5-pro"],
        },
    ]
    # The integer field takes the value valid for it, though the first model wrote text.
    assert fused.account["employees"]["value"] == 1200
    assert fused.account["employees"]["candidates"][0]["originals"] == ["1,200", 1200]
    # One model answered: its value, decided by "single".
    website = fused.account["website"]
    assert (website["value"], website["decided_by"], website["confidence"]) == (
        "acme.com",
        "single",
        1.0,
    )
    assert fused.value == {"name": "Acme Inc", "employees": 1200, "website": "acme.com"}
    assert fused.valid
    assert fused.arbitration is None
    assert fused.cost == 0


def test_two_models_that_disagree_tie_and_the_first_model_wins() -> None:
    one = {"name": "Acme", "employees": 100}
    other = {"name": "Acme", "employees": 120}
    fusion = fuse({"a::x": one, "b::y": other}, COMPANY)
    assert list(fusion.disputed) == ["employees"]
    assert [c.value for c in fusion.disputed["employees"].candidates] == [100, 120]
    employees = fusion.settle().account["employees"]
    assert employees["value"] == 100
    assert employees["decided_by"] == "plurality"
    assert employees["tie"] is True
    assert employees["agreed"] == ["a::x"]
    assert employees["confidence"] == 0.5
    # The order the models are given in breaks the tie.
    swapped = fuse({"b::y": other, "a::x": one}, COMPANY).settle()
    assert swapped.value["employees"] == 120
    assert swapped.account["name"]["decided_by"] == "majority"


def test_a_plurality_without_a_majority_is_no_tie() -> None:
    answers = {"m1": "Boston", "m2": "boston", "m3": "Cambridge", "m4": "Somerville"}
    results = {
        model: {"name": "Acme", "headquarters": {"city": city}} for model, city in answers.items()
    }
    fusion = fuse(results, COMPANY)
    assert list(fusion.disputed) == ["headquarters.city"]  # 2 of 4 is no majority
    city = fusion.settle().account["headquarters.city"]
    assert (city["value"], city["decided_by"], city["tie"]) == ("Boston", "plurality", False)
    assert city["agreed"] == ["m1", "m2"]
    assert city["confidence"] == 0.5


def test_the_arbiters_answer_decides_a_disputed_field() -> None:
    results = {
        "a": {"name": "Acme", "headquarters": {"city": "Boston", "country": "US"}},
        "b": {"name": "Acme", "headquarters": {"city": "Cambridge", "country": "us"}},
    }
    fusion = fuse(results, COMPANY)
    assert list(fusion.disputed) == ["headquarters.city"]
    # Compared normalised; a field that is not disputed ignores what the arbiter says.
    fused = fusion.settle({"headquarters.city": " cambridge", "name": "Other"})
    city = fused.account["headquarters.city"]
    assert (city["value"], city["decided_by"], city["tie"]) == ("Cambridge", "arbiter", False)
    assert city["agreed"] == ["b"]
    assert fused.value == {"name": "Acme", "headquarters": {"city": "Cambridge", "country": "US"}}
    assert fused.account["headquarters.country"]["decided_by"] == "majority"
    # An answer that is no candidate is not taken: plurality decides.
    invented = fusion.settle({"headquarters.city": "Paris"}).account["headquarters.city"]
    assert (invented["value"], invented["decided_by"], invented["tie"]) == (
        "Boston",
        "plurality",
        True,
    )


def test_lists_are_sets_and_nested_objects_fuse_field_by_field() -> None:
    results = {
        "a": {"name": "Acme", "industries": ["Software", "Cloud"], "headquarters": None},
        "b": {"name": "Acme", "industries": ["cloud", "software", "Cloud"], "headquarters": None},
        "c": {"name": "Acme", "industries": ["Software"]},
    }
    fused = fuse(results, COMPANY).settle()
    assert fused.value == {
        "name": "Acme",
        "industries": ["Software", "Cloud"],
        "headquarters": None,  # every model that wrote it left it null
    }
    industries = fused.account["industries"]
    assert industries["candidates"][0]["normalized"] == ["cloud", "software"]
    assert industries["agreed"] == ["a", "b"]
    assert fused.account["headquarters.city"]["decided_by"] == "none"
    assert fused.valid


def test_refs_and_nullable_branches_are_followed() -> None:
    schema = {
        "type": "object",
        "$defs": {
            "place": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "since": {"$ref": "#/$defs/day"}},
            },
            "day": {"type": "string", "format": "date"},
        },
        "properties": {"hq": {"anyOf": [{"$ref": "#/$defs/place"}, {"type": "null"}]}},
    }
    results = {
        "a": {"hq": {"city": "Oslo", "since": "2020-05-01"}},
        "b": {"hq": {"city": "oslo", "since": "2020-05-01T13:00:00-07:00"}},
    }
    fusion = fuse(results, schema)
    assert list(fusion.fields) == ["hq.city", "hq.since"]
    assert fusion.disputed == {}  # `format: date` makes the timestamp that day
    assert fusion.settle().value == {"hq": {"city": "Oslo", "since": "2020-05-01"}}


def test_a_schema_without_properties_fuses_the_keys_the_models_wrote() -> None:
    fused = fuse({"a": {"x": "1", "y": [1]}, "b": {"x": 1}}, {"type": "object"}).settle()
    assert fused.value == {"x": "1", "y": [1]}
    assert fused.account["x"]["decided_by"] == "majority"
    assert fused.account["y"]["decided_by"] == "single"


def test_the_fused_object_is_checked_against_the_schema() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
        "required": ["a", "b"],
        "maxProperties": 1,
    }
    fused = fuse({"m1": {"a": "x"}, "m2": {"b": "y"}}, schema).settle()
    assert fused.value == {"a": "x", "b": "y"}
    assert not fused.valid
    assert fused.problems == ["(root): {'a': 'x', 'b': 'y'} has too many properties"]
    nobody = fuse({"m1": {"a": "x"}, "m2": {"a": "x"}}, {**schema, "maxProperties": 2}).settle()
    assert nobody.problems == ["(root): 'b' is a required property"]
