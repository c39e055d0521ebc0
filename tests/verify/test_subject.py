"""Who a request is about: the name and birth date as written, never an instruction or an
identifier."""

from __future__ import annotations

import pytest

from openenrich.verify.subject import Subject, subject_of

CASES = [
    ("Verify identity: Rahul Sharma, +91 98xxxxxx10, PAN ABCDE1234F", "Rahul Sharma", None),
    (
        "KYC for Mr. Viktor Petrovich Kozlov, born 14/03/1961",
        "Viktor Petrovich Kozlov",
        "1961-03-14",
    ),
    ("Check PAN ABCPS1234K for Priya Patel (priya.patel@example.com)", "Priya Patel", None),
    ("Verify मोहन दास करमचंद, mobile 9876543210", "मोहन दास करमचंद", None),
    ("Screen Oceanic Freight Holdings Ltd", "Oceanic Freight Holdings Ltd", None),
    ("Name: Ada Lovelace, DOB 1815-12-10", "Ada Lovelace", "1815-12-10"),
    ("Also check his employment history", None, None),
    ("Verify PAN ABCDE1234F", None, None),
    ("verify this number +91 98765 43210 please", None, None),
    ("Rahul born 31/02/1990", None, None),  # one word is no name; no 31 February
]


@pytest.mark.parametrize(("message", "name", "birth_date"), CASES)
def test_the_subject_of_a_request(message: str, name: str | None, birth_date: str | None) -> None:
    assert subject_of(message, ["ABCDE1234F", "ABCPS1234K"]) == Subject(name, birth_date)


def test_an_identifier_is_not_a_name() -> None:
    # Without being told, "ABCDE" is a capitalised word; told, it is blanked out.
    assert subject_of("Verify Asha Rao ABCDE1234F", ["ABCDE1234F"]).name == "Asha Rao"
