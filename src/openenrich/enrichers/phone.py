"""Phone numbers: parsing and classifying them (shared with the verification tools'
`mobile_verification`), and the `phone` enricher over a column.

libphonenumber's metadata (the `phonenumbers` package) is offline; parsing a number costs
~20 µs, so the enricher parses each distinct value once.
"""

from __future__ import annotations

import re
from typing import Any

import phonenumbers
from phonenumbers import PhoneNumber, PhoneNumberType, number_type
from pydantic import Field, field_validator

from openenrich.enrichers.columns import PerValueEnricher
from openenrich.enrichers.registry import (
    EnricherOptions,
    OutputColumn,
    register,
)

LINE_TYPES = {
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE: "fixed line",
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "fixed line or mobile",
    PhoneNumberType.VOIP: "VoIP",
    PhoneNumberType.TOLL_FREE: "toll free",
    PhoneNumberType.PREMIUM_RATE: "premium rate",
}
_MASKED = re.compile(r"[xX*]")

ParseError = phonenumbers.NumberParseException


def is_masked(value: str) -> bool:
    """`+91 98XXX XXX10`: a number with digits hidden cannot be checked."""
    return bool(_MASKED.search(value))


def parse(value: str, default_region: str | None) -> PhoneNumber:
    """The number; ParseError when it cannot be read. Without a leading + or 00 it is
    read in `default_region`'s numbering plan."""
    return phonenumbers.parse(value, default_region)


def is_valid(number: PhoneNumber) -> bool:
    return bool(phonenumbers.is_valid_number(number))


def line_type(number: PhoneNumber) -> str:
    return LINE_TYPES.get(number_type(number), "other")


def e164(number: PhoneNumber) -> str:
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def describe(value: str, default_region: str | None) -> tuple[Any, ...]:
    """(E.164, country ISO code, line type, valid) of one value; all null but `valid`
    (false) when it cannot be read."""
    if is_masked(value):
        return None, None, None, False
    try:
        number = parse(value, default_region)
    except ParseError:
        return None, None, None, False
    if not is_valid(number):
        return e164(number), None, None, False
    region = phonenumbers.region_code_for_number(number)
    return (
        e164(number),
        region if region not in (None, "ZZ", "001") else None,
        line_type(number),
        True,
    )


@register
class PhoneEnricher(PerValueEnricher):
    name = "phone"
    version = 1
    description = "A phone number in E.164, its country, line type, and whether it is valid"

    class Options(EnricherOptions):
        field: str = Field(default="phone", min_length=1)
        default_region: str | None = None  # numbers without + are read in this country's plan
        prefix: str | None = None  # default: the field's name and "_"

        @field_validator("default_region")
        @classmethod
        def _region(cls, region: str | None) -> str | None:
            if region is not None and region.upper() not in phonenumbers.SUPPORTED_REGIONS:
                raise ValueError(f"{region!r} is not a country code libphonenumber knows")
            return region.upper() if region else None

    options: Options

    def answer(self, value: Any) -> tuple[Any, ...]:
        return describe(value, self.options.default_region)

    def outputs(self) -> list[OutputColumn]:
        p = self.prefix
        return [
            OutputColumn(f"{p}e164", "string", "the number in E.164 (+14155550123)"),
            OutputColumn(f"{p}country", "string", "ISO 3166-1 alpha-2 country of the number"),
            OutputColumn(
                f"{p}type",
                "string",
                "mobile, fixed line, fixed line or mobile, VoIP, toll free, premium rate, other",
            ),
            OutputColumn(f"{p}valid", "boolean", "a valid number in its numbering plan"),
        ]
