"""Finding the identifiers a verification request mentions.

Each finder looks for one kind in the message; what one finder took (an Aadhaar number, a
GSTIN) is blanked out before the next runs, so nothing is read twice: a PAN inside a GSTIN
is the GSTIN's, the digits of an EPIC are not a phone number. The subject's name is not
found here (`verify.subject`).

Where a shape alone would match ordinary text, a finder wants more:

- bic: four letters (bank), a real ISO 3166 country, two letters or digits (location) and
  optionally three (branch), in capitals; and either the word BIC or SWIFT shortly before
  it, or a digit in its location or branch. So "BIC DEUTDEFF" and "DEUTDEFF500" are BICs
  and "BUSINESS" (BUSI, NE Niger, SS) is not.
- lei: twenty capitals and digits, ending in two digits, with a letter among them (not a
  long number), that are not also a valid IBAN; and valid ISO 17442 check digits, unless
  the word LEI is shortly before it (the check then says what is wrong).
- ssn: NNN-NN-NNNN, or nine digits after the word SSN.
- domain: a name whose last part is a public suffix (tldextract's bundled list), not part
  of an email address or URL (those are found first), nor made only of legal forms
  ("Pvt.Ltd"). A file name whose extension is a country's domain (readme.md, Moldova) is
  read as a domain too.
- phone: numbers as written, in the default region (IN) when they have no country code;
  a number with hidden digits ("+91 98xxxxxx10") is found with `masked=True`, so the run
  can say it could not be checked rather than drop it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import phonenumbers
import schwifty
from schwifty.exceptions import SchwiftyException
from stdnum import iban as stdnum_iban
from stdnum import lei as stdnum_lei

from openenrich.enrichers.url import registered_domain


@dataclass(frozen=True, slots=True)
class Found:
    kind: str
    value: str
    masked: bool = False  # digits hidden ("98xxxxxx10"): mentioned, but not checkable


Match = tuple[int, int, str]  # where in the text (start, end), and the value
Finder = Callable[[str], Iterator[Match]]


def _pattern(regex: str, flags: int = 0) -> Finder:
    """Every match of `regex`; its value is the first group when it has one (the number
    after a keyword), the whole match otherwise."""
    compiled = re.compile(regex, flags)

    def finder(text: str) -> Iterator[Match]:
        for match in compiled.finditer(text):
            value = match.group(1) if compiled.groups else match.group(0)
            yield match.start(), match.end(), value.rstrip(".,;")

    return finder


def _named_before(text: str, start: int, words: str) -> bool:
    """Whether one of `words` (a regex alternation) comes at most two words before `start`:
    "BIC DEUTDEFF", "SWIFT code: DEUTDEFF", "LEI is 5299…"."""
    before = text[max(0, start - 30) : start]
    return re.search(rf"(?i)\b(?:{words})\b\W*(?:\w+\W+){{0,2}}$", before) is not None


_BIC = re.compile(r"\b[A-Z]{6}[A-Z0-9]{2}(?:[A-Z0-9]{3})?\b")  # bank, country, location, branch


def _bics(text: str) -> Iterator[Match]:
    for match in _BIC.finditer(text):
        code = match.group(0)
        named = _named_before(text, match.start(), "BIC|SWIFT")
        if not (named or any(char.isdigit() for char in code[6:])):
            continue
        try:
            schwifty.BIC(code)  # the country must be one
        except SchwiftyException:
            continue
        yield match.start(), match.end(), code


_LEI = re.compile(r"\b(?=[A-Z0-9]*[A-Z])[A-Z0-9]{18}\d{2}\b")


def _leis(text: str) -> Iterator[Match]:
    for match in _LEI.finditer(text):
        code = match.group(0)
        if stdnum_iban.is_valid(code):
            continue  # a 20-character IBAN (Austria's, say): the IBAN finder's
        if stdnum_lei.is_valid(code) or _named_before(text, match.start(), "LEI"):
            yield match.start(), match.end(), code


# Labels and a last part of letters (a TLD); not inside an email address, URL or longer name.
_DOMAIN = re.compile(
    r"(?<![\w@.-])(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
    r"(?![\w@-]|\.[A-Za-z0-9])"
)


# Legal forms written without a space ("Acme Pvt.Ltd", "Foo Co.Inc"): .ltd and .inc are
# real top-level domains, but a name made only of these is a company's, not a domain.
_LEGAL_FORMS = frozenset(
    {"pvt", "ltd", "co", "inc", "corp", "llc", "llp", "plc", "pte", "sdn", "bhd"}
)


def _domains(text: str) -> Iterator[Match]:
    for match in _DOMAIN.finditer(text):
        name = match.group(0).lower()
        if set(name.split(".")) <= _LEGAL_FORMS:
            continue
        if registered_domain(name)[0] is not None:
            yield match.start(), match.end(), name


# Longer, more specific formats first: what one finder takes, later ones do not see.
_FINDERS: list[tuple[str, Finder]] = [
    ("url", _pattern(r"https?://[^\s<>\"')]+", re.I)),
    ("email", _pattern(r"\b[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+\b")),
    ("domain", _domains),
    ("lei", _leis),  # before the IBAN's pattern, which a 20-character LEI can fit
    ("iban", _pattern(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")),
    ("bic", _bics),
    ("gstin", _pattern(r"\b\d{2}[A-Z]{5}\d{4}[A-Z][1-9A-Z]Z[0-9A-Z]\b")),
    ("pan", _pattern(r"\b[A-Z]{5}\d{4}[A-Z]\b")),
    ("epic", _pattern(r"\b[A-Z]{3}\d{7}\b")),
    ("uan", _pattern(r"\bUAN[\s:#-]*(\d{12})\b", re.I)),
    ("ssn", _pattern(r"\bSSN\b[\s:#.-]*(\d{9})\b", re.I)),
    ("ssn", _pattern(r"\b\d{3}-\d{2}-\d{4}\b")),
    ("emirates_id", _pattern(r"\b784-?\d{4}-?\d{7}-?\d\b")),
    ("aadhaar", _pattern(r"\b[2-9]\d{3}[ -]?\d{4}[ -]?\d{4}\b")),
    ("ein", _pattern(r"\b\d{2}-\d{7}\b")),
    (
        "vat",
        _pattern(
            r"\b(?:AT|BE|BG|CY|CZ|DE|DK|EE|EL|ES|FI|FR|HR|HU|IE|IT|LT|LU|LV|MT|NL|PL|PT|RO|SE|SI|SK)U?\d[\dA-Z]{7,11}\b"
        ),
    ),
    ("vehicle_rc", _pattern(r"\b[A-Z]{2}[ -]?\d{1,2}[ -]?[A-Z]{1,3}[ -]?\d{4}\b")),
]
# A number with masked digits ("+91 98xxxxxx10") is still a phone number someone meant.
_MASKED_PHONE = re.compile(r"\+?\d[\d \-]*[xX*]{2,}[\dxX* \-]*\d")


def find(text: str, default_region: str = "IN") -> list[Found]:
    found: list[Found] = []
    remaining = text
    for kind, finder in _FINDERS:
        for start, end, value in list(finder(remaining)):
            found.append(Found(kind, value))
            remaining = remaining[:start] + " " * (end - start) + remaining[end:]
    for match in _MASKED_PHONE.finditer(remaining):
        found.append(Found("phone", match.group(0).strip(), masked=True))
    remaining = _MASKED_PHONE.sub(lambda m: " " * len(m.group(0)), remaining)
    for number in phonenumbers.PhoneNumberMatcher(remaining, default_region):
        found.append(Found("phone", number.raw_string.strip()))
    unique: dict[tuple[str, str], Found] = {}
    for item in found:
        unique.setdefault((item.kind, re.sub(r"[\s-]", "", item.value)), item)
    return list(unique.values())
