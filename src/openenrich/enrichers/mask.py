"""Masking: find values of a kind in a column (`detect`) and hide them (`mask`). The mask
step of a stream's pipeline calls these; the `mask` enricher (used by the `transaction`
template) applies them to columns as an enrichment step.

    detect(array, kind)     kind: email, phone, card_number (Luhn-checked), ip
    mask(array, method, *, salt, keep=4)
        redact    "[REDACTED]"
        hash      SHA-256 hex of salt + value (the salt is the server's `mask_salt`, never
                  emitted: equal values give equal hashes, which cannot be reversed by
                  hashing guesses without it)
        truncate  an IP address to its /24 (IPv4) or /48 (IPv6); other text to its first
                  `keep` characters
        last4     every character but the last `keep` replaced by `*`

Null stays null. Patterns run vectorised (RE2 through pyarrow.compute); what needs more
than a pattern (the Luhn checksum, an address's parse, a hash) runs once per distinct
value.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from collections.abc import Callable
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from openenrich.enrichers.geo_ip import anonymize_ip
from openenrich.enrichers.registry import (
    Enricher,
    EnricherEnv,
    EnricherOptions,
    OutputColumn,
    register,
)

MaskKind = Literal["email", "phone", "card_number", "ip"]
MaskMethod = Literal["redact", "hash", "truncate", "last4"]
KINDS: tuple[str, ...] = ("email", "phone", "card_number", "ip")
METHODS: tuple[str, ...] = ("redact", "hash", "truncate", "last4")
REDACTED = "[REDACTED]"

_PATTERNS = {
    "email": r"^[^@\s]+@[^@\s]+\.[^@\s.]+$",
    # 7 to 15 digits (E.164's most), with the separators people write
    "phone": r"^\+?[\s().-]*(?:\d[\s().-]*){7,15}$",
    # 13 to 19 digits, optionally grouped by spaces or dashes
    "card_number": r"^(?:\d[ -]?){12,18}\d$",
    "ip": r"^(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*)$",
}
_NOT_DIGITS = re.compile(r"\D")


def luhn(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        digit = ord(char) - 48
        if index % 2:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def _is_card(value: str) -> bool:
    return luhn(_NOT_DIGITS.sub("", value))


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


_CONFIRM: dict[str, Callable[[str], bool]] = {"card_number": _is_card, "ip": _is_ip}


def as_text(array: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Any column as strings (numbers as their digits); what has no text form is null."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_dictionary(array.type):
        array = array.cast(array.type.value_type)
    if pa.types.is_string(array.type):
        return array
    try:
        return pc.cast(array, pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pa.nulls(len(array), pa.string())


def _per_distinct(values: pa.Array, function: Callable[[str], Any], type_: pa.DataType) -> pa.Array:
    encoded = pc.dictionary_encode(values)
    answers = [function(value) for value in encoded.dictionary.to_pylist()]
    return pa.array(answers, type_).take(encoded.indices)


def detect(array: pa.Array | pa.ChunkedArray, kind: str) -> pa.BooleanArray:
    """Which values are of `kind` (false for null)."""
    if kind not in _PATTERNS:
        raise ValueError(f"unknown kind {kind!r} (known: {', '.join(KINDS)})")
    text = pc.utf8_trim_whitespace(as_text(array))
    found = pc.fill_null(pc.match_substring_regex(text, _PATTERNS[kind]), False)
    confirm = _CONFIRM.get(kind)
    if confirm is not None and pc.any(found).as_py():
        candidates = pc.if_else(found, text, pa.scalar(None, pa.string()))
        found = pc.fill_null(_per_distinct(candidates, confirm, pa.bool_()), False)
    result: pa.BooleanArray = found
    return result


def _truncate(keep: int) -> Callable[[str], str]:
    def truncate(value: str) -> str:
        return anonymize_ip(value) if _is_ip(value.strip()) else value[:keep]  # type: ignore[return-value]

    return truncate


def mask(array: pa.Array | pa.ChunkedArray, method: str, *, salt: bytes, keep: int = 4) -> pa.Array:
    """The values hidden by `method` (a string array; null stays null)."""
    text = as_text(array)
    if method == "redact":
        return pc.if_else(pc.is_null(text), pa.scalar(None, pa.string()), pa.scalar(REDACTED))
    if method == "hash":
        if not salt:
            raise ValueError("masking by hash needs a salt (the setting OPENENRICH_MASK_SALT)")

        def digest(value: str) -> str:
            # Keyed (HMAC), not salt + value: nobody without the salt can test a guess.
            return hmac.new(salt, value.encode(), hashlib.sha256).hexdigest()

        return _per_distinct(text, digest, pa.string())
    if method == "truncate":
        return _per_distinct(text, _truncate(keep), pa.string())
    if method == "last4":
        length = pc.utf8_length(text)
        hidden = pc.max_element_wise(pc.subtract(length, keep), 0)
        stars = pc.binary_repeat(pa.scalar("*"), hidden)
        tail = pc.utf8_slice_codeunits(text, start=-keep) if keep else pa.scalar("")
        return pc.binary_join_element_wise(stars, tail, "")
    raise ValueError(f"unknown method {method!r} (known: {', '.join(METHODS)})")


@register
class MaskEnricher(Enricher):
    name = "mask"
    version = 1
    description = (
        "Hide values in place: the named fields, or the values of a detected kind (email, "
        "phone, card number, IP), by redaction, salted hash, truncation or keeping the last 4"
    )

    class Options(EnricherOptions):
        fields: list[str] = Field(
            default_factory=list
        )  # empty: every text column, for the values of `kinds`
        kinds: list[MaskKind] = Field(default_factory=list)  # empty: every value of `fields`
        method: MaskMethod = "redact"
        keep: int = Field(default=4, ge=0)

    options: Options

    def __init__(self, options: Any, env: EnricherEnv) -> None:
        super().__init__(options, env)
        o = self.options
        if not o.fields and not o.kinds:
            raise ValueError("name `fields`, `kinds`, or both")
        salt = env.settings.mask_salt
        self.salt = salt.get_secret_value().encode() if salt is not None else b""
        if o.method == "hash" and not self.salt:
            raise ValueError("masking by hash needs the setting OPENENRICH_MASK_SALT")

    def inputs(self) -> list[str]:
        return list(self.options.fields)

    def outputs(self) -> list[OutputColumn]:
        # It rewrites the columns it masks (as text) and adds none.
        return []

    def apply(self, table: pa.Table) -> dict[str, pa.Array]:
        o = self.options
        if o.fields:
            names = [name for name in o.fields if name in table.column_names]
        else:
            names = [
                field.name
                for field in table.schema
                if (pa.types.is_string(field.type) or pa.types.is_large_string(field.type))
                and not field.name.startswith("_")
            ]
        result = {}
        for name in names:
            values = as_text(table.column(name))
            masked = mask(values, o.method, salt=self.salt, keep=o.keep)
            if o.kinds:
                hit = detect(values, o.kinds[0])
                for kind in o.kinds[1:]:
                    hit = pc.or_(hit, detect(values, kind))
                if not pc.any(hit).as_py():
                    continue
                masked = pc.if_else(hit, masked, values)
            result[name] = masked
        return result
