"""Who a verification request is about: the subject's name and birth date, as written.

Identifiers have formats (verify.identifiers finds them); names do not. The name is the
first run of two to five capitalised words (or words of a script without case, such as
Devanagari or Arabic) that is not an instruction ("Verify identity"), a kind of identifier
("PAN", "Mobile") or an identifier itself, preferring the run after a colon or after
"name", "for", "of" or "named". A request that names nobody has no subject name, and the
checks that need one (name matching, sanctions screening) are not planned.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

# Words that start a request or name a kind of identifier, never part of a person's name.
_NOT_NAMES = frozenset(
    """
    verify verification verified check checks confirm validate screen kyc kyb identity
    identities please also and the a an of for with his her their its this that customer
    applicant person company business individual director owner employee employment
    history details pan aadhaar gstin gst uan epic voter mobile phone number email mail
    address dob born birth date iban bic swift lei ssn ein vat domain website url vehicle
    rc emirates id card account bank name named mr mrs ms dr shri smt sri
    """.split()  # noqa: SIM905 (a word list reads best as words)
)
# A word of a name: capitalised (Latin, Greek, Cyrillic…) or from a script without case.
_CAPITAL = r"[A-Z\u00C0-\u00DE\u0391-\u03A9\u0400-\u042F]"
_WORD = rf"(?:{_CAPITAL}[\w'\u2019.-]*|[\u0600-\u06FF\u0900-\u097F]+)"
_RUN = re.compile(rf"{_WORD}(?:[ \t]+{_WORD}){{0,6}}")
_LEAD = re.compile(r"(?:[:]\s*|\b(?:name|named|for|of)\s+)$", re.I)
_BIRTH = re.compile(
    r"\b(?:born|dob|d\.o\.b\.?|date of birth|birth ?date)[\s:]*(?:on\s+)?"
    r"(\d{4}-\d{2}-\d{2}|\d{1,2}[/.-]\d{1,2}[/.-]\d{4})",
    re.I,
)


@dataclass(frozen=True, slots=True)
class Subject:
    name: str | None
    birth_date: str | None  # ISO 8601 (YYYY-MM-DD)


def subject_of(text: str, identifiers: Sequence[str] = ()) -> Subject:
    """The subject of `text`; `identifiers` (values found in it) are not names."""
    blanked = text
    for value in identifiers:
        blanked = blanked.replace(value, " " * len(value))
    return Subject(_name(blanked), _birth_date(text))


def _name(text: str) -> str | None:
    candidates: list[tuple[bool, str]] = []
    for match in _RUN.finditer(text):
        words = [word.strip(".") for word in match.group(0).split()]
        # Instructions and kinds of identifiers are cut off both ends of a run.
        while words and words[0].casefold() in _NOT_NAMES:
            words.pop(0)
        while words and words[-1].casefold() in _NOT_NAMES:
            words.pop()
        if not 2 <= len(words) <= 5 or any(w.casefold() in _NOT_NAMES for w in words):
            continue
        if any(any(char.isdigit() for char in word) for word in words):
            continue
        after_lead = bool(_LEAD.search(text[: match.start()]))
        candidates.append((after_lead, " ".join(words)))
    if not candidates:
        return None
    led = [name for after_lead, name in candidates if after_lead]
    return led[0] if led else candidates[0][1]


def _birth_date(text: str) -> str | None:
    match = _BIRTH.search(text)
    if match is None:
        return None
    written = match.group(1)
    try:
        if "-" in written and len(written.split("-")[0]) == 4:
            return date.fromisoformat(written).isoformat()
        day, month, year = (int(part) for part in re.split(r"[/.-]", written))
        return date(year, month, day).isoformat()  # day first, as in India and Europe
    except ValueError:
        return None
