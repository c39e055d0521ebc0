"""Sanctions screening: a name (and a birth date, a country) against a list of targets.

The list is a CSV in OpenSanctions' "targets.simple.csv" format: id, schema, name,
aliases, birth_date, countries, addresses, identifiers, sanctions, phones, emails,
dataset, first_seen, last_seen, last_change, the many-valued ones `;`-separated. Only
id and name are required; the columns are found by their header.

Screening is an indexed lookup, so a list of a million entries answers in milliseconds
(bench/sanctions.py). Every name of an entry (the primary one and each alias) is
normalised once, at load (`names.normalise`), and each of its tokens goes into an
inverted index: token → the names that have it. Other spellings are found through the
vocabulary, not the postings, so they cost memory per distinct token, not per name:
each distinct token is also filed under its consonant skeleton ("mohammed", "muhammad"
→ "mhmd"), its letters sorted ("shamra", "sharma" → "aahmrs": a transposition), its
letters without vowels, w and y (how Arabic script comes out of anyascii) and, for a
long token, its first four letters. A query token finds the tokens it shares a key
with that are similar enough to pair in `names.match`, and the names that have any of
them. A typo that defeats every key of a token (a consonant changed in a short one) is
still found through the name's other tokens. Initials are not indexed: "R. Sharma"
finds the Sharmas, and the initial picks among them.

Candidates are the names sharing the most query tokens, at most MAX_CANDIDATES of them,
each scored with `names.match`. A query token in more than MAX_POSTINGS names (a
"Mohammed" in a list of a million) is too common to find candidates with: the rarer
tokens find them and the common ones only rank what they found; when every token is
that common, the candidates are the names with both of the two rarest. Among names
sharing as many tokens, those with the query's initials and of its length come first.
The scores are the name's, adjusted by what else was given:

- birth date, when the entry has one: the same date at the precision both have (year,
  year-month or full date) adds BIRTH_DATE_AGREES and `birth_date` is a matched field;
  the same year but another month or day subtracts BIRTH_DATE_SAME_YEAR, years one
  apart BIRTH_DATE_YEAR_APART (a transcription or an estimate), further apart
  BIRTH_DATE_CONTRADICTS. With several dates on the entry the best one counts.
- country, when the entry has some: one of them adds COUNTRY_AGREES and `country` is a
  matched field; another does not subtract (a nationality, a residence and an address
  may all differ).

Candidates at or above the threshold are returned, best first; an entry appears once,
with its best-matching name. The answer is a list of candidates with their evidence,
never a yes or no: that is for the analyst who reads it.
"""

from __future__ import annotations

import csv
import threading
from array import array
from collections import Counter
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from importlib import resources
from itertools import groupby
from pathlib import Path

from openenrich.verify.names import (
    MIN_PAIR,
    NameMatch,
    NormalisedName,
    match_normalised,
    normalise,
    token_similarity,
)

DEFAULT_THRESHOLD = 70.0
MAX_POSTINGS = 20_000  # a query token in more names than this finds no candidates
MAX_CANDIDATES = 1_000  # names scored per query, at most
BIRTH_DATE_AGREES = 5.0
BIRTH_DATE_SAME_YEAR = 5.0
BIRTH_DATE_YEAR_APART = 10.0
BIRTH_DATE_CONTRADICTS = 25.0
COUNTRY_AGREES = 3.0

COLUMNS = ("id", "schema", "name", "aliases", "birth_date", "countries", "dataset", "sanctions")


@dataclass(frozen=True, slots=True)
class Candidate:
    id: str
    schema: str  # Person, Company, Organization, LegalEntity, Vessel…
    caption: str  # the entry's primary name
    name: str  # the entry's name that matched: the primary name or an alias
    score: float  # 0-100: the name's score adjusted by birth date and country
    name_score: float  # the name's alone (names.match)
    method: str  # how the names matched (NameMatch.method)
    matched: tuple[str, ...]  # "name", and "birth_date", "country" where they agree
    conflicts: tuple[str, ...]  # "birth_date" where it contradicts the entry's
    birth_dates: tuple[str, ...]
    countries: tuple[str, ...]
    datasets: tuple[str, ...]
    sanctions: tuple[str, ...]


class SanctionsList:
    """Entries and the index over their names. Build one with `from_csv` (or `add`), then
    only read it: `screen` may run in several threads at once."""

    def __init__(self) -> None:
        # Entries, a column each: a row is an entry number.
        self._ids: list[str] = []
        self._schemas: list[str] = []
        self._captions: list[str] = []
        self._birth_dates: list[str] = []  # `;`-separated, as in the file
        self._countries: list[str] = []
        self._datasets: list[str] = []
        self._sanctions: list[str] = []
        # Names, a column each: a row is a name number.
        self._name_entry = array("i")
        self._name_text: list[str] = []
        self._name_norm: list[NormalisedName] = []
        self._name_weight = array("B")  # twice the name's weight (`_weight`)
        self._name_firsts = array("I")  # the first letters of its tokens (`_first_letters`)
        # The index.
        self._postings: dict[str, array[int]] = {}  # token → name numbers
        self._similar: dict[str, list[str]] = {}  # key → tokens filed under it
        self._shared: dict[str, str] = {}  # one copy of each repeated value

    @classmethod
    def from_csv(cls, path: Path) -> SanctionsList:
        listing = cls()
        with path.open(newline="", encoding="utf-8") as file:
            for row in _rows(file):
                listing.add(*row)
        return listing

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def name_count(self) -> int:
        return len(self._name_text)

    def add(
        self,
        id: str,
        schema: str,
        name: str,
        aliases: str = "",
        birth_date: str = "",
        countries: str = "",
        dataset: str = "",
        sanctions: str = "",
    ) -> None:
        """One entry, its many-valued fields `;`-separated as in the CSV."""
        entry = len(self._ids)
        one = self._shared.setdefault  # schemas, countries, datasets repeat: one copy each
        self._ids.append(id)
        self._schemas.append(one(schema, schema))
        self._captions.append(name)
        self._birth_dates.append(one(birth_date, birth_date))
        self._countries.append(one(countries, countries))
        self._datasets.append(one(dataset, dataset))
        self._sanctions.append(one(sanctions, sanctions))
        if not aliases:  # most entries: nothing to compare
            only = normalise(name)
            if only.tokens:
                self._add_name(entry, name.strip(), only)
            return
        seen: set[tuple[str, ...]] = set()
        for text in (name, *aliases.split(";")):
            normalised = normalise(text)
            key = tuple(sorted(normalised.tokens))
            if key and key not in seen:  # an alias written as another name adds nothing
                seen.add(key)
                self._add_name(entry, text.strip(), normalised)

    def screen(
        self,
        name: str,
        *,
        birth_date: str | None = None,
        country: str | None = None,
        limit: int = 5,
        threshold: float = DEFAULT_THRESHOLD,
    ) -> list[Candidate]:
        """The entries `name` may be, best first. `birth_date` is YYYY, YYYY-MM or
        YYYY-MM-DD (ValueError otherwise); `country` a code as in the list ("ru")."""
        query = normalise(name)
        wanted = _parse_date(birth_date) if birth_date else None
        place = country.strip().casefold() if country else None
        bonus = (BIRTH_DATE_AGREES if wanted else 0.0) + (COUNTRY_AGREES if place else 0.0)
        best: dict[int, tuple[int, NameMatch]] = {}
        for number in self._candidates(query):
            result = match_normalised(query, self._name_norm[number])
            if result.score + bonus < threshold:
                continue
            entry = self._name_entry[number]
            held = best.get(entry)
            if held is None or (result.score, -number) > (held[1].score, -held[0]):
                best[entry] = (number, result)  # on a tie, the name listed first
        found = [
            candidate
            for number, result in best.values()
            if (candidate := self._candidate(number, result, wanted, place)).score >= threshold
        ]
        found.sort(key=lambda candidate: (-candidate.score, -candidate.name_score, candidate.id))
        return found[:limit]

    def _add_name(self, entry: int, text: str, normalised: NormalisedName) -> None:
        number = len(self._name_text)
        self._name_entry.append(entry)
        self._name_text.append(text)
        self._name_norm.append(normalised)
        self._name_weight.append(min(255, round(2 * _weight(normalised.tokens))))
        self._name_firsts.append(_first_letters(normalised.tokens))
        postings = self._postings
        for token in set(normalised.tokens):
            if len(token) < 2:
                continue  # an initial: it sorts candidates, it does not find them
            found = postings.get(token)
            if found is None:
                found = postings[token] = array("i")
                for key in _keys(token):
                    self._similar.setdefault(key, []).append(token)
            found.append(number)

    def _candidates(self, query: NormalisedName) -> Collection[int]:
        groups: list[tuple[int, list[array[int]]]] = []  # per query token
        for token in set(query.tokens):
            if len(token) < 2:
                continue
            postings = [self._postings[other] for other in self._variants(token, query)]
            size = sum(map(len, postings))
            if size:
                groups.append((size, postings))
        if not groups:
            return ()
        groups.sort(key=lambda group: group[0])
        rare = [postings for size, postings in groups if size <= MAX_POSTINGS]
        common = [postings for size, postings in groups if size > MAX_POSTINGS]
        if not rare:
            return self._common(query, common[:2])
        counts: Counter[int] = Counter()
        for postings in rare:
            counts.update(postings[0] if len(postings) == 1 else _union(postings))
        if len(counts) <= MAX_CANDIDATES:
            return counts.keys()
        # Too many: the common tokens found none of them, but they tell them apart.
        for postings in common[:2]:
            if sum(map(len, postings)) <= 5 * MAX_POSTINGS:
                counts.update(counts.keys() & _union(postings))
        return self._fewer(query, counts)

    def _variants(self, token: str, query: NormalisedName) -> set[str]:
        """The tokens of the list that `token` may be: itself, and those filed under one of
        its keys that are similar enough to pair with it."""
        found = {token} if token in self._postings else set()
        for key in _keys(token):
            for other in self._similar.get(key, ()):
                if other in found:
                    continue
                vowelless = query.vowelless or not _has_vowel(other)
                if token_similarity(token, other, vowelless=vowelless) >= MIN_PAIR:
                    found.add(other)
        return found

    def _fewer(self, query: NormalisedName, counts: Counter[int]) -> list[int]:
        """MAX_CANDIDATES of the names counted: those sharing the most query tokens, and
        among those sharing as many as the last one taken, the `_closest`."""
        ranked = sorted(counts, key=counts.__getitem__, reverse=True)
        level = counts[ranked[MAX_CANDIDATES - 1]]
        above = [number for number in ranked if counts[number] > level]
        tied = [number for number in ranked[len(above) :] if counts[number] == level]
        return above + self._closest(query, tied, MAX_CANDIDATES - len(above))

    def _common(self, query: NormalisedName, groups: list[list[array[int]]]) -> list[int]:
        """Candidates when every query token is in more than MAX_POSTINGS names: the names
        with both of the two rarest, or, for a one-token query, the shortest names (the
        only ones that can score high)."""
        if len(groups) > 1:
            names = list(_union(groups[0]) & _union(groups[1]))
            return names if len(names) <= MAX_CANDIDATES else self._closest(query, names)
        names = list(_union(groups[0]))
        names.sort(key=self._name_weight.__getitem__)
        return names[:MAX_CANDIDATES]

    def _closest(
        self, query: NormalisedName, names: list[int], size: int = MAX_CANDIDATES
    ) -> list[int]:
        """`size` of `names`: those with a token for each of the query's initials, then
        those closest to the query in length (a name much longer or shorter cannot score
        high)."""
        initials = _first_letters(token for token in query.tokens if len(token) == 1)
        if initials:
            firsts = self._name_firsts
            names = [n for n in names if firsts[n] & initials == initials] or names
        target = round(2 * _weight(query.tokens))
        weight = self._name_weight
        names.sort(key=lambda number: abs(weight[number] - target))
        return names[:size]

    def _candidate(
        self, number: int, result: NameMatch, wanted: str | None, place: str | None
    ) -> Candidate:
        entry = self._name_entry[number]
        dates = _split(self._birth_dates[entry])
        countries = _split(self._countries[entry])
        score = result.score
        matched = ["name"]
        conflicts = []
        change = _birth_date_change(wanted, dates) if wanted else 0.0
        score += change
        if change > 0:
            matched.append("birth_date")
        elif change < 0:
            conflicts.append("birth_date")
        if place and place in {code.casefold() for code in countries}:
            score += COUNTRY_AGREES
            matched.append("country")
        return Candidate(
            id=self._ids[entry],
            schema=self._schemas[entry],
            caption=self._captions[entry],
            name=self._name_text[number],
            score=round(min(100.0, max(0.0, score)), 1),
            name_score=result.score,
            method=result.method,
            matched=tuple(matched),
            conflicts=tuple(conflicts),
            birth_dates=dates,
            countries=countries,
            datasets=_split(self._datasets[entry]),
            sanctions=_split(self._sanctions[entry]),
        )


_lock = threading.Lock()
_loaded: dict[Path, tuple[tuple[int, int], SanctionsList]] = {}


def load_list(path: Path) -> SanctionsList:
    """The list at `path`, loaded once per version of the file: a server process loads it
    on first use and again when the operator replaces the file (a new modification time
    or size). Replace it whole (write a new file, then rename it over the old one): a
    file being written in place may be read half-written. Only the newest version of
    each path is kept."""
    path = Path(path).resolve()
    stat = path.stat()
    version = (stat.st_mtime_ns, stat.st_size)
    held = _loaded.get(path)
    if held is not None and held[0] == version:
        return held[1]
    with _lock:  # one load at a time: a million-entry list is a few hundred MB
        held = _loaded.get(path)
        if held is not None and held[0] == version:
            return held[1]
        listing = SanctionsList.from_csv(path)
        _loaded[path] = (version, listing)
        return listing


def sample_list_path() -> Path:
    """The synthetic sample list shipped with the package (fictional people and
    companies), for trying screening out and for tests."""
    return Path(str(resources.files(__package__).joinpath("data", "sanctions_sample.csv")))


def _rows(file: Iterable[str]) -> Iterator[tuple[str, ...]]:
    reader = csv.reader(file)
    header = [column.strip().casefold() for column in next(reader, [])]
    missing = {"id", "name"} - set(header)
    if missing:
        raise ValueError(f"a sanctions list needs the columns {sorted(missing)}")
    where = [header.index(column) if column in header else None for column in COLUMNS]
    for row in reader:
        if len(row) < len(header):
            row = [*row, *[""] * (len(header) - len(row))]
        yield tuple("" if index is None else row[index] for index in where)


# Consonants that are one sound in names spelt several ways; applied in this order.
_SOUNDS = (("sch", "sh"), ("kh", "h"), ("ph", "f"), ("ck", "k"), ("q", "k"), ("c", "k"))
_SOUNDS_LETTERS = str.maketrans({"z": "s", "w": "v", "x": "ks"})
_VOWELS = str.maketrans("", "", "aeiouy")
_BARE = str.maketrans("", "", "aeiouwy")


def _keys(token: str) -> set[str]:
    """The keys `token` is filed under: a token sharing one may be a spelling of it."""
    keys = {"".join(sorted(token))}
    if len(token) >= 3:
        sounds = token
        for spelling, sound in _SOUNDS:
            sounds = sounds.replace(spelling, sound)
        sounds = sounds.translate(_SOUNDS_LETTERS)
        head = "a" if sounds[0] in "aeiouy" else sounds[0]
        keys.add(_squeezed(head + sounds[1:].translate(_VOWELS)))
    bare = _squeezed(token.translate(_BARE))
    if len(bare) >= 2:
        keys.add(bare)
    if len(token) >= 7:  # a long token with two typos, if they are past its start
        keys.add(token[:4])
    return keys


def _squeezed(text: str) -> str:
    """Doubled letters once: "mohammed" and "mohamed" are one name."""
    return "".join(letter for letter, _ in groupby(text))


def _has_vowel(token: str) -> bool:
    return len(token.translate(_BARE)) < len(token)


def _union(postings: list[array[int]]) -> set[int]:
    return set().union(*postings)


def _first_letters(tokens: Iterable[str]) -> int:
    """A bit per letter (digits share bits with letters: it only narrows candidates)."""
    bits = 0
    for token in tokens:
        bits |= 1 << (ord(token[0]) & 31)
    return bits


def _weight(tokens: Iterable[str]) -> float:
    return sum(0.5 if len(token) == 1 else 1.0 for token in tokens)


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(";") if part.strip())


def _parse_date(value: str) -> str:
    """YYYY, YYYY-MM or YYYY-MM-DD, as given; the precision is its length."""
    value = value.strip()
    if len(value) in (4, 7, 10) and _looks_like_date(value):
        return value
    raise ValueError(f"birth date {value!r} is not YYYY, YYYY-MM or YYYY-MM-DD")


def _looks_like_date(value: str) -> bool:
    parts = value.split("-")
    return (
        all(part.isdigit() for part in parts) and [len(p) for p in parts] == [4, 2, 2][: len(parts)]
    )


def _birth_date_change(wanted: str, dates: tuple[str, ...]) -> float:
    """What the entry's birth dates do to the score, the best of them counting; nothing
    when the entry has none (or none that starts with a year)."""
    change = 0.0
    for date in dates:
        if not date[:4].isdigit():
            continue
        change = change or -BIRTH_DATE_CONTRADICTS
        size = min(len(wanted), len(date))
        if wanted[:size] == date[:size]:
            return BIRTH_DATE_AGREES
        years = abs(int(wanted[:4]) - int(date[:4]))
        if years == 0:
            change = max(change, -BIRTH_DATE_SAME_YEAR)
        elif years == 1:
            change = max(change, -BIRTH_DATE_YEAR_APART)
    return change
