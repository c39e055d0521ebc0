"""Sanctions screening against the shipped sample list and generated ones."""

from __future__ import annotations

import csv
import os
import random
from pathlib import Path

import pytest

from openenrich.verify.sanctions import (
    DEFAULT_THRESHOLD,
    Candidate,
    SanctionsList,
    load_list,
    sample_list_path,
)

HEADER = [
    "id",
    "schema",
    "name",
    "aliases",
    "birth_date",
    "countries",
    "addresses",
    "identifiers",
    "sanctions",
    "phones",
    "emails",
    "dataset",
    "first_seen",
    "last_seen",
    "last_change",
]


@pytest.fixture(scope="module")
def sample() -> SanctionsList:
    return SanctionsList.from_csv(sample_list_path())


def found(candidates: list[Candidate]) -> dict[str, tuple[float, tuple[str, ...]]]:
    return {candidate.id: (candidate.score, candidate.matched) for candidate in candidates}


def test_the_sample_list_ships_with_the_package(sample: SanctionsList) -> None:
    assert sample_list_path().is_file()
    assert len(sample) == 41


# (birth date, {id: (score, matched fields)}): "Viktor Kozlov" is three people on the
# sample list; his birth date says which, a date that contradicts one drops or lowers it.
KOZLOV = [
    (
        None,
        {
            "smp-p-0003": (90.0, ("name",)),  # Viktor Kozlovsky, born 1990
            "smp-p-0001": (80.0, ("name",)),  # Viktor Petrovich Kozlov, born 1961-03-14
            "smp-p-0002": (80.0, ("name",)),  # Viktor Pavlovich Kozlov, born 1978-11-02
        },
    ),
    ("1961-03-14", {"smp-p-0001": (85.0, ("name", "birth_date"))}),
    ("1961", {"smp-p-0001": (85.0, ("name", "birth_date"))}),
    ("1961-03", {"smp-p-0001": (85.0, ("name", "birth_date"))}),
    ("1962-03-14", {"smp-p-0001": (70.0, ("name",))}),  # a year apart: lower, still shown
    ("1975-03-14", {}),  # years apart: none of the three at the default threshold
]


@pytest.mark.parametrize(("birth_date", "expected"), KOZLOV)
def test_viktor_kozlov_is_told_apart_by_his_birth_date(
    sample: SanctionsList,
    birth_date: str | None,
    expected: dict[str, tuple[float, tuple[str, ...]]],
) -> None:
    candidates = sample.screen("Viktor Kozlov", birth_date=birth_date)
    assert found(candidates) == expected
    assert list(found(candidates)) == list(expected)  # best first


def test_a_contradicting_birth_date_lowers_the_score_and_is_reported(
    sample: SanctionsList,
) -> None:
    [kozlov] = [c for c in sample.screen("Viktor Kozlov", threshold=0) if c.id == "smp-p-0001"]
    [wrong] = [
        candidate
        for candidate in sample.screen("Viktor Kozlov", birth_date="1975-03-14", threshold=50)
        if candidate.id == "smp-p-0001"
    ]
    assert (wrong.score, wrong.name_score) == (kozlov.score - 25, kozlov.name_score)
    assert (wrong.matched, wrong.conflicts) == (("name",), ("birth_date",))


def test_a_candidate_carries_its_evidence(sample: SanctionsList) -> None:
    [candidate] = sample.screen("Viktor Kozlov", birth_date="1961-03-14", country="RU")
    assert candidate == Candidate(
        id="smp-p-0001",
        schema="Person",
        caption="Viktor Petrovich Kozlov",
        name="Viktor Petrovich Kozlov",
        score=88.0,
        name_score=80.0,
        method="partial",
        matched=("name", "birth_date", "country"),
        conflicts=(),
        birth_dates=("1961-03-14",),
        countries=("ru",),
        datasets=("Sample Consolidated Sanctions List", "Sample Financial Sanctions Register"),
        sanctions=(
            "Sample Council - Decision 2024/11 - asset freeze",
            "Sample Treasury - Programme NORTHWIND",
        ),
    )


# (query, id, the name that matched, score): aliases in other scripts are names too.
ALIASES = [
    ("Дмитрий Волков", "smp-p-0004", "Дмитрий Волков", 100.0),
    ("Dmitriy Volkov", "smp-p-0004", "Дмитрий Волков", 100.0),
    ("Dmitri Volkov", "smp-p-0004", "Дмитрий Волков", 96.2),
    ("Виктор Петрович Козлов", "smp-p-0001", "Viktor Petrovich Kozlov", 100.0),
    ("عمر الراشدي", "smp-p-0010", "Omar Al Rashidi", 100.0),
    ("सुरेश भटनागर", "smp-p-0016", "सुरेश कुमार भटनागर", 80.0),
    ("陈伟良", "smp-p-0018", "Chen Weiliang", 100.0),  # a tie: the name listed first
    ("S. K. Bhatnagar", "smp-p-0016", "S. K. Bhatnagar", 100.0),
]


@pytest.mark.parametrize(("query", "entry", "name", "score"), ALIASES)
def test_an_alias_in_another_script_finds_its_entry(
    sample: SanctionsList, query: str, entry: str, name: str, score: float
) -> None:
    best = sample.screen(query)[0]
    assert (best.id, best.name, best.score) == (entry, name, score)


@pytest.mark.parametrize(
    "query",
    [
        "Oceanic Freight Holdings",
        "Oceanic Freight Holdings Ltd",
        "OCEANIC FREIGHT HOLDINGS LIMITED",
        "Oceanic Freight Holdings S.A.",
        "Holdings Oceanic Freight",
    ],
)
def test_a_company_is_found_with_or_without_its_legal_form(
    sample: SanctionsList, query: str
) -> None:
    [company] = sample.screen(query, country="pa")
    assert (company.id, company.schema, company.score) == ("smp-c-0001", "Company", 100.0)
    assert company.matched == ("name", "country")


def test_a_company_missing_a_word_scores_lower(sample: SanctionsList) -> None:
    [company] = sample.screen("Oceanic Freight")
    assert (company.id, company.score, company.method) == ("smp-c-0001", 80.0, "partial")


@pytest.mark.parametrize(
    "query", ["Margaret Thompson-Ashby", "Rahul Sharma", "Acme Holdings Ltd", "Kozlov", ""]
)
def test_a_name_not_on_the_list_has_no_candidates(sample: SanctionsList, query: str) -> None:
    assert sample.screen(query) == []


def test_the_threshold_and_the_limit_bound_the_answer(sample: SanctionsList) -> None:
    assert [c.id for c in sample.screen("Viktor Kozlov", limit=1)] == ["smp-p-0003"]
    assert [c.id for c in sample.screen("Viktor Kozlov", threshold=85)] == ["smp-p-0003"]
    assert all(c.score >= 50 for c in sample.screen("Kozlov", threshold=50, limit=100))


@pytest.mark.parametrize("birth_date", ["14/03/1961", "1961-3-14", "61", "March 1961"])
def test_a_birth_date_that_is_not_iso_is_refused(sample: SanctionsList, birth_date: str) -> None:
    with pytest.raises(ValueError, match="birth date"):
        sample.screen("Viktor Kozlov", birth_date=birth_date)


def test_a_list_needs_only_ids_and_names(tmp_path: Path) -> None:
    path = tmp_path / "minimal.csv"
    path.write_text("name,id\nAcme Holdings Ltd,acme\n", encoding="utf-8")
    [acme] = SanctionsList.from_csv(path).screen("ACME HOLDINGS")
    assert (acme.id, acme.schema, acme.birth_dates, acme.datasets) == ("acme", "", (), ())
    (tmp_path / "nameless.csv").write_text("id,caption\nacme,Acme\n", encoding="utf-8")
    with pytest.raises(ValueError, match="name"):
        SanctionsList.from_csv(tmp_path / "nameless.csv")


FIRST = ["Anna", "Boris", "Carlos", "Deepa", "Elena", "Farhan", "Giorgi", "Hana", "Igor", "Jia"]
MIDDLE = ["", "", "Maria", "Kumar", "Petrovich", "Ali", "Jose"]
LAST = ["Ivanova", "Sharma", "Garcia", "Khan", "Chen", "Muller", "Okafor", "Silva", "Kim"]
WORDS = ["Global", "Pacific", "Star", "United", "Eastern", "Atlas", "Delta", "Summit"]
KINDS = ["Trading", "Shipping", "Holdings", "Logistics", "Minerals", "Energy"]
SUFFIXES = ["Ltd", "LLC", "GmbH", "S.A.", "Pvt Ltd", "Inc."]
TARGET = ["tgt-1", "Person", "Zoltan Ferenc Abernathy", "Зольтан Абернати", "1970-01-01", "hu"]


def write_list(path: Path, size: int, insert_at: int | None = None) -> None:
    """`size` entries built from a few names, so many share them; the target at
    `insert_at`."""
    rng = random.Random(size)
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(HEADER)
        for number in range(size):
            if number == insert_at:
                writer.writerow([*TARGET, "", "", "Test programme", "", "", "Test list"])
                continue
            if number % 5 == 0:
                name = " ".join(
                    [rng.choice(WORDS), rng.choice(KINDS), str(number), rng.choice(SUFFIXES)]
                )
                row = [f"c-{number}", "Company", name, "", "", "pa"]
            else:
                parts = [rng.choice(FIRST), rng.choice(MIDDLE), rng.choice(LAST)]
                name = " ".join(part for part in parts if part)
                born = f"{rng.randint(1940, 2000)}-{rng.randint(1, 12):02}-{rng.randint(1, 28):02}"
                row = [f"p-{number}", "Person", name, f"{parts[2]} {parts[0]}", born, "xx"]
            writer.writerow([*row, "", "", "Test programme", "", "", "Test list"])


@pytest.fixture(scope="module")
def twenty_thousand(tmp_path_factory: pytest.TempPathFactory) -> SanctionsList:
    path = tmp_path_factory.mktemp("lists") / "targets.simple.csv"
    write_list(path, 20_000, insert_at=12_345)
    return load_list(path)


@pytest.mark.parametrize(
    ("query", "birth_date"),
    [
        ("Zoltan Abernathy", None),
        ("Abernathy, Zoltan F.", "1970"),
        ("Zoltan Abernathyy", None),
        ("Z. Abernathy", "1970-01-01"),
        ("Зольтан Абернати", None),
    ],
)
def test_an_entry_among_twenty_thousand_is_found(
    twenty_thousand: SanctionsList, query: str, birth_date: str | None
) -> None:
    assert len(twenty_thousand) == 20_000
    best = twenty_thousand.screen(query, birth_date=birth_date)[0]
    assert best.id == "tgt-1"
    assert best.score >= DEFAULT_THRESHOLD


def test_names_many_entries_share_give_the_best_few(twenty_thousand: SanctionsList) -> None:
    candidates = twenty_thousand.screen("Anna Sharma", limit=10)
    assert len(candidates) == 10
    assert all(candidate.score == 100.0 for candidate in candidates)
    assert {candidate.name for candidate in candidates} <= {"Anna Sharma", "Sharma Anna"}


def test_a_list_replaced_on_disk_is_loaded_again(tmp_path: Path) -> None:
    path = tmp_path / "targets.simple.csv"
    write_list(path, 100, insert_at=50)
    first = load_list(path)
    assert load_list(path) is first  # unchanged: loaded once
    assert first.screen("Zoltan Abernathy")[0].id == "tgt-1"

    replacement = tmp_path / "new.csv"
    write_list(replacement, 100)
    stat = path.stat()
    os.replace(replacement, path)  # as an operator would: a whole new file
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    second = load_list(path)
    assert second is not first
    assert second.screen("Zoltan Abernathy") == []
    assert load_list(path) is second
