"""Finding the identifiers a verification request mentions.

Each finder looks for one kind in the message; what one finder took (an Aadhaar number, a
GSTIN) is blanked out before the phone finder runs, so digits are not read twice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers


@dataclass(frozen=True, slots=True)
class Found:
    kind: str
    value: str


# Longer, more specific formats first: what one finder takes, later ones do not see.
_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("url", re.compile(r"https?://[^\s<>\"')]+", re.I)),
    ("email", re.compile(r"\b[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+\b")),
    ("iban", re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")),
    ("gstin", re.compile(r"\b\d{2}[A-Z]{5}\d{4}[A-Z][1-9A-Z]Z[0-9A-Z]\b")),
    ("pan", re.compile(r"\b[A-Z]{5}\d{4}[A-Z]\b")),
    ("uan", re.compile(r"\bUAN[\s:#-]*(\d{12})\b", re.I)),
    ("emirates_id", re.compile(r"\b784-?\d{4}-?\d{7}-?\d\b")),
    ("aadhaar", re.compile(r"\b[2-9]\d{3}[ -]?\d{4}[ -]?\d{4}\b")),
    ("ein", re.compile(r"\b\d{2}-\d{7}\b")),
    (
        "vat",
        re.compile(
            r"\b(?:AT|BE|BG|CY|CZ|DE|DK|EE|EL|ES|FI|FR|HR|HU|IE|IT|LT|LU|LV|MT|NL|PL|PT|RO|SE|SI|SK)U?\d[\dA-Z]{7,11}\b"
        ),
    ),
    ("vehicle_rc", re.compile(r"\b[A-Z]{2}[ -]?\d{1,2}[ -]?[A-Z]{1,3}[ -]?\d{4}\b")),
]
# A number with masked digits ("+91 98xxxxxx10") is still a phone number someone meant.
_MASKED_PHONE = re.compile(r"\+?\d[\d \-]*[xX*]{2,}[\dxX* \-]*\d")


def find(text: str, default_region: str = "IN") -> list[Found]:
    found: list[Found] = []
    remaining = text
    for kind, pattern in _PATTERNS:
        for match in pattern.finditer(remaining):
            value = match.group(1) if match.groups() else match.group(0)
            found.append(Found(kind, value.rstrip(".,;")))
        remaining = pattern.sub(lambda m: " " * len(m.group(0)), remaining)
    for match in _MASKED_PHONE.finditer(remaining):
        found.append(Found("phone", match.group(0).strip()))
    remaining = _MASKED_PHONE.sub(lambda m: " " * len(m.group(0)), remaining)
    for number in phonenumbers.PhoneNumberMatcher(remaining, default_region):
        found.append(Found("phone", number.raw_string.strip()))
    unique: dict[tuple[str, str], Found] = {}
    for item in found:
        unique.setdefault((item.kind, re.sub(r"[\s-]", "", item.value)), item)
    return list(unique.values())
