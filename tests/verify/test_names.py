"""Name matching: what normalisation removes, and how far apart names score."""

from __future__ import annotations

import pytest

from openenrich.verify.names import NormalisedName, match, normalise

# (a, b, method): normalised, these are one name, and score 100.
SAME_NAME = [
    ("Rahul Sharma", "Rahul Sharma", "exact"),
    ("Sharma Rahul", "Rahul Sharma", "token_sort"),
    ("SHARMA, Rahul", "rahul sharma", "token_sort"),
    ("Mr. Rahul Sharma", "Rahul Sharma", "exact"),
    ("Shri Rahul Sharma", "Rahul Sharma", "exact"),
    ("Smt. Priya Patel", "Priya Patel", "exact"),
    ("Dr. Mrs. Priya Patel", "Priya Patel", "exact"),
    ("Rahul Sharma Jr.", "Rahul Sharma", "exact"),
    ("Acme Holdings Ltd", "ACME HOLDINGS LIMITED", "exact"),
    ("Acme Holdings Pvt. Ltd.", "Acme Holdings Private Limited", "exact"),
    ("M/s. Acme Traders", "Acme Traders LLP", "exact"),
    ("Oceanic Freight Holdings S.A.", "Oceanic Freight Holdings", "exact"),
    ("OOO Romashka", "Romashka LLC", "exact"),
    ("Smith & Co", "Smith and Company", "exact"),
    ("Jean-Pierre Müller", "Jean Pierre Muller", "exact"),
    ("Łukasz Żółć", "Lukasz Zolc", "exact"),
    ("Sean O'Brien", "OBrien Sean", "token_sort"),
    ("Abdulrahman Zadran", "Abdul Rahman Zadran", "exact"),
    ("Omar Al-Farouq", "Omar Al Farouq", "exact"),
    ("Виктор Козлов", "Viktor Kozlov", "transliterated"),
    ("習近平", "Xi Jinping", "transliterated"),
]

# (a, b, method, at least): another spelling, script or an initial scores high.
CLOSE_NAMES = [
    ("Рахул Шарма", "Rahul Sharma", "transliterated", 85),
    ("राहुल शर्मा", "Rahul Sharma", "transliterated", 85),
    ("محمد علي", "Mohammed Ali", "transliterated", 85),
    ("R. Sharma", "Rahul Sharma", "initials", 85),
    ("R Sharma", "Rahul Sharma", "initials", 85),
    ("Sharma, R.", "Rahul Sharma", "initials", 85),
    ("R. K. Sharma", "Rahul Kumar Sharma", "initials", 80),
    ("Rahul Shamra", "Rahul Sharma", "fuzzy", 85),
    ("Rahul Sharmaa", "Rahul Sharma", "fuzzy", 85),
    ("Mohammed Ali", "Muhammad Ali", "fuzzy", 85),
    ("Dmitri Volkov", "Dmitry Volkov", "fuzzy", 85),
]

# (a, b, score): tokens on one side only lower the score; a subset is never 100.
EXTRA_TOKENS = [
    ("Acme", "Holdings Acme", 66.7),
    ("Acme", "Acme Holdings Group", 50.0),
    ("Holdings Acme", "Acme Holdings Group", 80.0),
    ("Viktor Kozlov", "Viktor Petrovich Kozlov", 80.0),
    ("Rahul", "Rahul Sharma", 66.7),
    ("Mohammed", "Mohammed Ali Khan", 50.0),
    ("Oceanic Freight", "Oceanic Freight Holdings Ltd", 80.0),
]

# (a, b, below): different people and companies.
DIFFERENT_NAMES = [
    ("Rahul Sharma", "Priya Patel", 50),
    ("Rahul Sharma", "Rahul Verma", 70),
    ("Acme Holdings", "Zenith Holdings", 70),
    ("Viktor Kozlov", "Dmitri Volkov", 50),
    ("Chen Weiliang", "Park Min-jun", 50),
    ("R. Sharma", "Priya Sharma", 70),
]


@pytest.mark.parametrize(("a", "b", "method"), SAME_NAME)
def test_honorifics_legal_forms_order_and_spelling_do_not_change_a_name(
    a: str, b: str, method: str
) -> None:
    assert (match(a, b).score, match(a, b).method) == (100.0, method)
    assert match(b, a).score == 100.0


@pytest.mark.parametrize(("a", "b", "method", "least"), CLOSE_NAMES)
def test_transliterations_initials_and_typos_score_high(
    a: str, b: str, method: str, least: float
) -> None:
    result = match(a, b)
    assert least <= result.score < 100, result
    assert result.method == method
    assert match(b, a).score == result.score


@pytest.mark.parametrize(("a", "b", "score"), EXTRA_TOKENS)
def test_tokens_on_one_side_only_lower_the_score(a: str, b: str, score: float) -> None:
    """Not token_set_ratio, which scores a subset ("Acme" in "Holdings Acme") 100."""
    assert match(a, b).score == match(b, a).score == score
    assert match(a, b).method == "partial"


@pytest.mark.parametrize(("a", "b", "below"), DIFFERENT_NAMES)
def test_different_names_score_low(a: str, b: str, below: float) -> None:
    assert match(a, b).score < below
    assert match(b, a).score < below


@pytest.mark.parametrize(
    ("name", "normalised"),
    [
        ("Mr. R. K. Sharma", NormalisedName(("r", "k", "sharma"))),
        ("R Sharma", NormalisedName(("r", "sharma"))),
        ("Acme Co. Pvt. Ltd.", NormalisedName(("acme",), ("co", "pvt ltd"))),
        (
            "Oceanic Freight Holdings Limited",
            NormalisedName(("oceanic", "freight", "holdings"), ("ltd",)),
        ),
        ("OOO Romashka", NormalisedName(("romashka",), ("ooo",))),
        ("Meridian Petrochemical S.A.", NormalisedName(("meridian", "petrochemical"), ("sa",))),
        ("Рахул Шарма", NormalisedName(("rakhul", "sharma"), transliterated=True)),
        ("عمر الفاروق", NormalisedName(("mr", "lfrwq"), transliterated=True, vowelless=True)),
        ("김정은", NormalisedName(("gim", "jeong", "eun"), transliterated=True)),
        ("Ltd", NormalisedName(("ltd",))),  # a legal form alone is the name
        ("Mr", NormalisedName(("mr",))),
        ("  -- ", NormalisedName(())),
    ],
)
def test_normalise_keeps_the_tokens_and_the_legal_forms_apart(
    name: str, normalised: NormalisedName
) -> None:
    assert normalise(name) == normalised


def test_a_legal_form_says_the_name_is_a_company() -> None:
    assert normalise("Acme Holdings GmbH").is_company
    assert not normalise("Rahul Sharma").is_company


@pytest.mark.parametrize(("a", "b"), [("", "Rahul Sharma"), ("Rahul Sharma", "..."), ("", "")])
def test_a_name_with_no_tokens_matches_nothing(a: str, b: str) -> None:
    assert (match(a, b).score, match(a, b).method) == (0.0, "empty")


def test_names_with_no_token_in_common_score_zero() -> None:
    assert (match("Rahul Sharma", "Kwame Boateng").score, match("A B", "C D").method) == (
        0.0,
        "none",
    )


def test_scores_have_one_decimal() -> None:
    score = match("R. Sharma", "Rahul Sharma").score
    assert score == round(score, 1) == 89.3
