"""Identifiers (IBAN, VAT, EIN, …): python-stdnum's offline format and checksum checks,
by kind (shared with the verification tools' checks), and the `identifiers` enricher that
validates a column, or detects which kind each value is.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any, Literal

from pydantic import Field
from stdnum import bic, iban, imei, isbn, isin, lei, vatin
from stdnum.eu import vat
from stdnum.exceptions import ValidationError
from stdnum.in_ import aadhaar, gstin, pan
from stdnum.us import ein, ssn

from openenrich.enrichers.columns import PerValueEnricher
from openenrich.enrichers.registry import (
    EnricherOptions,
    OutputColumn,
    register,
)

# kind -> the python-stdnum module that checks it. `vat` is the EU's (VIES format);
# `vatin` any country's VAT number with a country prefix stdnum knows.
MODULES: dict[str, ModuleType] = {
    "iban": iban,
    "bic": bic,
    "vat": vat,
    "vatin": vatin,
    "ein": ein,
    "ssn": ssn,
    "lei": lei,
    "isin": isin,
    "isbn": isbn,
    "imei": imei,
    "gstin": gstin,
    "pan": pan,
    "aadhaar": aadhaar,
}
# Tried in this order by kind `auto`: the most specific formats first, so a 9-digit
# number is not "found" to be an EIN when it is also something narrower.
DETECT_ORDER = ("iban", "lei", "isin", "gstin", "vat", "vatin", "bic", "imei", "isbn", "pan")
Kind = Literal[
    "auto", "iban", "bic", "vat", "vatin", "ein", "ssn", "lei", "isin", "isbn", "imei",
    "gstin", "pan", "aadhaar",
]  # fmt: skip

StdnumError = ValidationError


def validator(kind: str) -> Callable[[str], str]:
    """The check of `kind`: the number in its compact form, or StdnumError."""
    validate: Callable[[str], str] = MODULES[kind].validate
    return validate


def country(kind: str, compact: str) -> str | None:
    """The country an identifier names, for the kinds that name one."""
    if kind in ("iban", "vat", "vatin", "isin"):
        code = compact[:2].upper()
        return "GR" if code == "EL" else code  # Greek VAT numbers say EL
    if kind == "bic":
        return compact[4:6].upper()
    if kind in ("ein", "ssn"):
        return "US"
    if kind in ("gstin", "pan", "aadhaar"):
        return "IN"
    return None


def check(kind: str, value: str) -> tuple[Any, ...]:
    """(kind, valid, compact form, country) of one value of a known kind."""
    try:
        compact = validator(kind)(value)
    except StdnumError:
        return kind, False, None, None
    return kind, True, compact, country(kind, compact)


def detect(value: str) -> tuple[Any, ...]:
    """The first kind `value` is a valid number of, as `check` answers; (None, False, …)
    when it is none."""
    for kind in DETECT_ORDER:
        answer = check(kind, value)
        if answer[1]:
            return answer
    return None, False, None, None


@register
class IdentifiersEnricher(PerValueEnricher):
    name = "identifiers"
    version = 1
    description = (
        "Validate an identifier (IBAN, BIC, VAT, EIN, LEI, ISIN, …) by format and checksum, or "
        "detect its kind; its compact form and country"
    )

    class Options(EnricherOptions):
        field: str = Field(min_length=1)
        kind: Kind = "auto"
        prefix: str | None = None  # default: the field's name and "_"

    options: Options

    def answer(self, value: Any) -> tuple[Any, ...]:
        kind = self.options.kind
        return detect(value) if kind == "auto" else check(kind, value)

    def outputs(self) -> list[OutputColumn]:
        p = self.prefix
        return [
            OutputColumn(f"{p}kind", "string", "the kind checked, or detected (iban, vat, …)"),
            OutputColumn(f"{p}valid", "boolean", "format and checksum are right"),
            OutputColumn(f"{p}compact", "string", "the number without spaces or separators"),
            OutputColumn(f"{p}country", "string", "the country it names (ISO 3166-1 alpha-2)"),
        ]
