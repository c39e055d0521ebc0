"""The `currency` enricher: an amount as a number and in minor units, its ISO 4217
currency checked, and optionally converted with the operator's rates.

Amounts come as numbers or as text the way people write them: `1,299.00`, `€12,50`, `$5`,
`12.5 EUR`, `1.299.000`, `(12.00)`. Of `,` and `.` the last one is the decimal mark when
both appear. Alone, a mark that appears more than once groups thousands, and so does a
comma followed by exactly three digits (`1,299`); otherwise it is the decimal mark (`12,50`,
`1.234`: a dot is read as decimal, as for the dinars' three minor digits). A code or
symbol in the text names the currency when the currency field does not.

Codes and minor units are the ISO 4217 table as the `iso4217` package ships it (the
published list; CLDR's "digits", as Babel has them, differ for HUF, COP, IDR and others).
Rates: the option `rates` or the file `currency_rates_file` (units of each currency per one
unit of the base).
"""

from __future__ import annotations

import csv
import functools
import re
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
from iso4217 import Currency
from pydantic import Field, field_validator

from openenrich.enrichers.columns import DistinctCache, column, strings
from openenrich.enrichers.registry import (
    Enricher,
    EnricherEnv,
    EnricherOptions,
    OutputColumn,
    register,
)


@functools.cache
def minor_units() -> dict[str, int | None]:
    """ISO 4217 code -> digits after the decimal mark (None: no minor unit, e.g. XAU)."""
    return {currency.code: currency.exponent for currency in Currency}


def is_currency(code: str) -> bool:
    return code in minor_units()


# Symbols read from amounts. `$` alone is the US dollar; prefixed dollars name their own.
SYMBOLS = {
    "US$": "USD",
    "C$": "CAD",
    "CA$": "CAD",
    "A$": "AUD",
    "AU$": "AUD",
    "NZ$": "NZD",
    "HK$": "HKD",
    "S$": "SGD",
    "R$": "BRL",
    "MX$": "MXN",
    "$": "USD",
    "€": "EUR",
    "£": "GBP",
    "¥": "JPY",
    "₹": "INR",
    "₩": "KRW",
    "₽": "RUB",
    "₺": "TRY",
    "₴": "UAH",
    "₪": "ILS",
    "฿": "THB",
    "₫": "VND",
    "₱": "PHP",
    "₦": "NGN",
    "zł": "PLN",
    "Kč": "CZK",
}
_SYMBOL = re.compile("|".join(re.escape(s) for s in sorted(SYMBOLS, key=len, reverse=True)))
_CODE = re.compile(r"(?<![A-Za-z])([A-Za-z]{3})(?![A-Za-z])")
_NUMBER = re.compile(r"[-+]?\(?[-+]?\d[\d.,'\s\u00a0\u202f]*")
_PLAIN = r"^[-+]?\d+(\.\d+)?$"


def parse_amount(text: str) -> tuple[float | None, str | None]:
    """(the amount, the currency it names, if any) of one written amount."""
    currency = None
    symbol = _SYMBOL.search(text)
    if symbol:
        currency = SYMBOLS[symbol.group()]
    code = _CODE.search(text)
    if code and code.group(1).upper() in minor_units():
        currency = code.group(1).upper()
    match = _NUMBER.search(text)
    if match is None:
        return None, currency
    raw = match.group().strip()
    negative = raw.startswith("-") or raw.startswith("(") or "-" in text[: match.start()]
    digits = re.sub(r"[^\d.,]", "", raw)
    return _number(digits, negative), currency


def _number(digits: str, negative: bool) -> float | None:
    last_comma, last_dot = digits.rfind(","), digits.rfind(".")
    if last_comma >= 0 and last_dot >= 0:
        mark = "," if last_comma > last_dot else "."
    elif last_comma >= 0 or last_dot >= 0:
        mark = "," if last_comma >= 0 else "."
        after = len(digits) - digits.rfind(mark) - 1
        if digits.count(mark) > 1 or (mark == "," and after == 3):
            mark = ""  # it groups thousands
    else:
        mark = ""
    whole, _, fraction = digits.rpartition(mark) if mark else (digits, "", "")
    whole = re.sub(r"[.,]", "", whole)
    if not whole and not fraction:
        return None
    value = float(f"{whole or '0'}.{fraction or '0'}")
    return -value if negative else value


def load_rates(path: Path) -> dict[str, float]:
    """A rates file: JSON {"base", "rates": {code: rate}} or CSV `currency,rate` rows."""
    try:
        text = path.read_text()
    except OSError as error:
        raise ValueError(f"cannot read the rates file {path}: {error.strerror}") from None
    if path.suffix.lower() == ".json":
        try:
            data = orjson.loads(text)
            rates = {str(k).upper(): float(v) for k, v in data["rates"].items()}
            base = str(data.get("base", "USD")).upper()
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
            raise ValueError(
                f'the rates file {path} is not {{"base": "USD", "rates": {{"EUR": 0.92}}}}'
            ) from None
    else:
        rates, base = {}, "USD"
        try:
            for row in csv.DictReader(text.splitlines()):
                if row["currency"].strip().lower() == "base":
                    base = row["rate"].strip().upper()
                else:
                    rates[row["currency"].strip().upper()] = float(row["rate"])
        except (KeyError, ValueError, AttributeError):
            raise ValueError(
                f"the rates file {path} is not CSV with `currency,rate` rows"
            ) from None
    rates[base] = 1.0
    return rates


@register
class CurrencyEnricher(Enricher):
    name = "currency"
    version = 1
    description = (
        "An amount (number or text such as '€12,50') as a number and in minor units, its ISO "
        "4217 currency validated, and optionally converted with the operator's rates"
    )

    class Options(EnricherOptions):
        field: str = Field(default="amount", min_length=1)
        currency_field: str | None = "currency"
        default_currency: str | None = None  # when neither the field nor the text names one
        target_currency: str | None = None  # convert to it (needs rates)
        rates: dict[str, float] | None = None  # instead of the rates file
        rates_base: str = "USD"  # the currency `rates` are per one unit of
        prefix: str | None = None  # default: the field's name and "_"

        @field_validator("default_currency", "target_currency", "rates_base")
        @classmethod
        def _iso(cls, code: str | None) -> str | None:
            if code is not None and code.upper() not in minor_units():
                raise ValueError(f"{code!r} is not an ISO 4217 currency code")
            return code.upper() if code else None

        @field_validator("rates")
        @classmethod
        def _rates(cls, rates: dict[str, float] | None) -> dict[str, float] | None:
            if rates is None:
                return None
            for code, rate in rates.items():
                if code.upper() not in minor_units():
                    raise ValueError(f"{code!r} is not an ISO 4217 currency code")
                if not rate > 0:
                    raise ValueError(f"the rate of {code} must be above 0")
            return {code.upper(): rate for code, rate in rates.items()}

    options: Options

    def __init__(self, options: Any, env: EnricherEnv) -> None:
        super().__init__(options, env)
        o = self.options
        self.prefix = o.prefix if o.prefix is not None else f"{o.field}_"
        self.rates: dict[str, float] | None = None
        if o.target_currency:
            if o.rates is not None:
                self.rates = {**o.rates, o.rates_base: 1.0}
            elif env.settings.currency_rates_file is not None:
                path = env.settings.currency_rates_file
                self.rates = dict(env.shared(f"rates:{path}", lambda: load_rates(path)))
            else:
                raise ValueError(
                    "target_currency needs rates: the option `rates` or the setting "
                    "OPENENRICH_CURRENCY_RATES_FILE"
                )
            if o.target_currency not in self.rates:
                raise ValueError(f"the rates have no rate for {o.target_currency}")
        self._parsed = DistinctCache(parse_amount)

    def inputs(self) -> list[str]:
        o = self.options
        return [o.field, *([o.currency_field] if o.currency_field else [])]

    def outputs(self) -> list[OutputColumn]:
        p = self.prefix
        columns = [
            OutputColumn(f"{p}value", "float64", "the amount as a number, in major units"),
            OutputColumn(f"{p}currency", "string", "the ISO 4217 code (null if none is valid)"),
            OutputColumn(
                f"{p}currency_valid",
                "boolean",
                "the currency given is an ISO 4217 code (null when none is given)",
            ),
            OutputColumn(
                f"{p}minor", "int64", "the amount in minor units (cents: 12.50 EUR is 1250)"
            ),
        ]
        if self.options.target_currency:
            columns.append(
                OutputColumn(
                    f"{p}converted",
                    "float64",
                    f"the amount in {self.options.target_currency}, rounded to its minor units",
                )
            )
        return columns

    def _amounts(self, table: pa.Table) -> tuple[pa.Array, pa.Array]:
        """(amount as float64, currency named in the text or null)."""
        raw = column(table, self.options.field)
        if (
            pa.types.is_integer(raw.type)
            or pa.types.is_floating(raw.type)
            or pa.types.is_decimal(raw.type)
        ):
            return pc.cast(raw, pa.float64()), pa.nulls(len(raw), pa.string())
        text = strings(table, self.options.field)
        plain = pc.fill_null(pc.match_substring_regex(text, _PLAIN), False)
        if pc.all(pc.or_(plain, pc.is_null(text))).as_py():
            return pc.cast(text, pa.float64()), pa.nulls(len(text), pa.string())
        value, named = self._parsed.apply(text, [pa.float64(), pa.string()])
        return value, named

    def apply(self, table: pa.Table) -> dict[str, pa.Array]:
        o, p = self.options, self.prefix
        value, named = self._amounts(table)
        given = named
        if o.currency_field:
            field = pc.utf8_upper(pc.utf8_trim_whitespace(strings(table, o.currency_field)))
            field = pc.if_else(pc.equal(field, ""), pa.scalar(None, pa.string()), field)
            given = pc.coalesce(field, named)
        if o.default_currency:
            given = pc.coalesce(given, pa.scalar(o.default_currency))
        codes = pa.array(sorted(minor_units()), pa.string())
        valid = pc.is_in(given, value_set=codes)
        valid = pc.if_else(pc.is_null(given), pa.scalar(None, pa.bool_()), valid)
        currency = pc.if_else(pc.fill_null(valid, False), given, pa.scalar(None, pa.string()))

        digits = pc.cast(self._lookup(currency, minor_units()), pa.float64())
        minor = pc.cast(
            pc.round(
                pc.multiply(value, pc.power(10.0, digits)), round_mode="half_towards_infinity"
            ),
            pa.int64(),
        )
        result = {
            f"{p}value": value,
            f"{p}currency": currency,
            f"{p}currency_valid": valid,
            f"{p}minor": minor,
        }
        if o.target_currency and self.rates is not None:
            rate = self._lookup(currency, self.rates)
            target = self.rates[o.target_currency]
            converted = pc.multiply(pc.divide(value, rate), target)
            target_digits = minor_units()[o.target_currency] or 0
            result[f"{p}converted"] = pc.round(
                converted, target_digits, round_mode="half_towards_infinity"
            )
        return result

    @staticmethod
    def _lookup(codes: pa.Array, table: dict[str, Any]) -> pa.Array:
        """`table[code]` per row (null where the code is null or not in the table)."""
        keys = sorted(table)
        index = pc.index_in(codes, value_set=pa.array(keys, pa.string()))
        values = pa.array([table[key] for key in keys])
        if len(values) == 0:
            return pa.nulls(len(codes), pa.float64())
        return values.take(index)
