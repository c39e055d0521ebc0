"""The currency enricher: amounts as people write them, ISO 4217 codes and minor units,
and conversion with the operator's rates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers.enrichers import enrich
from openenrich.config import Settings
from openenrich.enrichers.currency import parse_amount


@pytest.mark.parametrize(
    ("text", "amount", "currency"),
    [
        ("1,299.00", 1299.0, None),
        ("€12,50", 12.5, "EUR"),
        ("$5", 5.0, "USD"),
        ("12.5 EUR", 12.5, "EUR"),
        ("1.299.000", 1299000.0, None),
        ("1.299,95 €", 1299.95, "EUR"),
        ("1 299,95", 1299.95, None),
        ("CHF 1'000.50", 1000.5, "CHF"),
        ("-3.10", -3.1, None),
        ("(12.00)", -12.0, None),
        ("£0.99", 0.99, "GBP"),
        ("R$ 10,00", 10.0, "BRL"),
        ("1,299", 1299.0, None),
        ("12,5", 12.5, None),
        ("free", None, None),
    ],
)
def test_written_amounts(text: str, amount: float | None, currency: str | None) -> None:
    assert parse_amount(text) == (amount, currency)


def test_amounts_codes_and_minor_units() -> None:
    rows = enrich(
        "currency",
        [
            {"txn_amount": "€12,50", "txn_currency": None},
            {"txn_amount": "1,299.00", "txn_currency": "usd"},
            {"txn_amount": "1500", "txn_currency": "JPY"},
            {"txn_amount": "1.234", "txn_currency": "BHD"},
            {"txn_amount": "10", "txn_currency": "XYZ"},
            {"txn_amount": "10", "txn_currency": None},
            {"txn_amount": None, "txn_currency": "EUR"},
        ],
        field="txn_amount",
        currency_field="txn_currency",
    )
    got = [
        (
            r["txn_amount_value"],
            r["txn_amount_currency"],
            r["txn_amount_currency_valid"],
            r["txn_amount_minor"],
        )
        for r in rows
    ]
    assert got == [
        (12.5, "EUR", True, 1250),
        (1299.0, "USD", True, 129900),
        (1500.0, "JPY", True, 1500),  # the yen has no minor unit
        (1.234, "BHD", True, 1234),  # the Bahraini dinar has three
        (10.0, None, False, None),
        (10.0, None, None, None),
        (None, "EUR", True, None),
    ]


def test_numbers_are_read_as_they_are() -> None:
    rows = enrich(
        "currency", [{"amount": 19.99, "currency": "EUR"}, {"amount": 5, "currency": "HUF"}]
    )
    assert [(r["amount_value"], r["amount_minor"]) for r in rows] == [(19.99, 1999), (5.0, 500)]


def test_conversion_with_rates_given_as_an_option() -> None:
    rows = enrich(
        "currency",
        [
            {"amount": "€10", "currency": None},
            {"amount": "100", "currency": "JPY"},
            {"amount": "1", "currency": "SEK"},
        ],
        target_currency="USD",
        rates={"EUR": 0.8, "JPY": 150},
    )
    assert [r["amount_converted"] for r in rows] == [12.5, 0.67, None]


@pytest.mark.parametrize("kind", ["json", "csv"])
def test_conversion_with_the_operators_rates_file(tmp_path: Path, kind: str) -> None:
    if kind == "json":
        path = tmp_path / "rates.json"
        path.write_text(json.dumps({"base": "EUR", "rates": {"USD": 1.25, "GBP": 0.5}}))
    else:
        path = tmp_path / "rates.csv"
        path.write_text("currency,rate\nbase,EUR\nUSD,1.25\nGBP,0.5\n")
    rows = enrich(
        "currency",
        [{"amount": "$5", "currency": None}, {"amount": "£1.00", "currency": None}],
        Settings(currency_rates_file=path),
        target_currency="EUR",
    )
    assert [r["amount_converted"] for r in rows] == [4.0, 2.0]
