"""Masking: detecting kinds of values and hiding them, for the mask step and the `mask`
enricher of the transaction template."""

from __future__ import annotations

import hashlib
import hmac

import pyarrow as pa
import pytest

from helpers.enrichers import enrich
from openenrich.config import Settings
from openenrich.enrichers import registry
from openenrich.enrichers.mask import detect, mask
from openenrich.enrichers.registry import EnricherEnv

VALUES = pa.array(
    [
        "jane@example.com",
        "+1 (650) 253-0000",
        "4111 1111 1111 1111",
        "4111111111111112",  # fails Luhn
        "8.8.8.8",
        "2001:db8::1",
        "999.1.1.1",
        "hello world",
        None,
    ]
)


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("email", [True, False, False, False, False, False, False, False, False]),
        ("phone", [False, True, False, False, False, False, False, False, False]),
        ("card_number", [False, False, True, False, False, False, False, False, False]),
        ("ip", [False, False, False, False, True, True, False, False, False]),
    ],
)
def test_detect(kind: str, expected: list[bool]) -> None:
    assert detect(VALUES, kind).to_pylist() == expected


def test_card_numbers_as_integers_are_detected() -> None:
    assert detect(pa.array([4111111111111111, 12345]), "card_number").to_pylist() == [True, False]


def test_methods() -> None:
    values = pa.array(["4111 1111 1111 1111", "203.0.113.77", "2001:db8:abcd:12::1", "ab", None])
    assert mask(values, "redact", salt=b"s").to_pylist() == ["[REDACTED]"] * 4 + [None]
    assert mask(values, "last4", salt=b"").to_pylist() == [
        "***************1111",
        "********3.77",
        "***************2::1",
        "ab",
        None,
    ]
    assert mask(values, "truncate", salt=b"", keep=4).to_pylist() == [
        "4111",
        "203.0.113.0",
        "2001:db8:abcd::",
        "ab",
        None,
    ]
    hashed = mask(values, "hash", salt=b"pepper").to_pylist()
    assert hashed[0] == hmac.new(b"pepper", b"4111 1111 1111 1111", hashlib.sha256).hexdigest()
    assert hashed[4] is None
    with pytest.raises(ValueError, match="needs a salt"):
        mask(values, "hash", salt=b"")


def test_the_mask_enricher_rewrites_the_columns_in_place() -> None:
    rows = [
        {"txn_id": "t1", "card": "4111 1111 1111 1111", "note": "paid with 5500 0000 0000 0004"},
        {"txn_id": "t2", "card": "not a card", "note": "5500000000000004"},
    ]
    table = pa.Table.from_pylist(rows)
    env = EnricherEnv(Settings())
    by_kind = registry.build("mask", {"kinds": ["card_number"], "method": "last4"}, env)
    assert by_kind.outputs() == []
    assert {k: v.to_pylist() for k, v in by_kind.apply(table).items()} == {
        "card": ["***************1111", "not a card"],
        "note": ["paid with 5500 0000 0000 0004", "************0004"],
    }
    salted = EnricherEnv(Settings(mask_salt="pepper"))
    by_field = registry.build("mask", {"fields": ["txn_id"], "method": "hash"}, salted)
    assert by_field.apply(table)["txn_id"].to_pylist() == [
        hmac.new(b"pepper", b"t1", hashlib.sha256).hexdigest(),
        hmac.new(b"pepper", b"t2", hashlib.sha256).hexdigest(),
    ]


def test_the_salt_is_never_in_the_output() -> None:
    rows = enrich("email_domain", [{"email": "a@b.co"}], Settings(mask_salt="pepper"))
    assert "pepper" not in repr(rows)
    assert "pepper" not in repr(Settings(mask_salt="pepper"))
