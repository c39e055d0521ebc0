"""phone, email_domain and identifiers: the same answers as the verification tools give,
from the same code."""

from __future__ import annotations

from helpers.enrichers import enrich


def test_phone_numbers() -> None:
    rows = enrich(
        "phone",
        [
            {"phone": "+1 650-253-0000"},
            {"phone": "+91 98765 43210"},
            {"phone": "020 7946 0958"},
            {"phone": "+91 12345"},
            {"phone": "+91 98XXX XXX10"},
            {"phone": "call me"},
            {"phone": None},
        ],
        default_region="GB",
    )
    got = [(r["phone_e164"], r["phone_country"], r["phone_type"], r["phone_valid"]) for r in rows]
    assert got == [
        ("+16502530000", "US", "fixed line or mobile", True),
        ("+919876543210", "IN", "mobile", True),
        ("+442079460958", "GB", "fixed line", True),
        ("+9112345", None, None, False),
        (None, None, None, False),
        (None, None, None, False),
        (None, None, None, None),
    ]


def test_email_domains() -> None:
    rows = enrich(
        "email_domain",
        [
            {"email": "Jane.Doe@Gmail.com"},
            {"email": "info@acme-widgets.com"},
            {"email": "x@mailinator.com"},
            {"email": "no-reply@sub.example.org"},
            {"email": "not an address"},
            {"email": None},
        ],
    )
    got = [
        (r["email_domain"], r["email_free"], r["email_disposable"], r["email_role"]) for r in rows
    ]
    assert got == [
        ("gmail.com", True, False, False),
        ("acme-widgets.com", False, False, True),
        ("mailinator.com", True, True, False),  # on both lists
        ("sub.example.org", False, False, True),
        (None, None, None, None),
        (None, None, None, None),
    ]


def test_identifiers_of_a_kind_and_detected() -> None:
    values = [
        "GB82 WEST 1234 5698 7654 32",
        "GB82 WEST 1234 5698 7654 33",
        "DE136695976",
        "04-2103594",
        "DEUTDEFF",
        None,
    ]
    rows = enrich("identifiers", [{"id": v} for v in values], field="id", kind="iban")
    assert [(r["id_valid"], r["id_compact"], r["id_country"]) for r in rows] == [
        (True, "GB82WEST12345698765432", "GB"),
        (False, None, None),
        (False, None, None),
        (False, None, None),
        (False, None, None),
        (None, None, None),
    ]
    detected = enrich("identifiers", [{"id": v} for v in values], field="id")
    assert [(r["id_kind"], r["id_valid"], r["id_country"]) for r in detected] == [
        ("iban", True, "GB"),
        (None, False, None),
        ("vat", True, "DE"),
        (None, False, None),  # an EIN is not told apart from other 9-digit numbers
        ("bic", True, "DE"),
        (None, None, None),
    ]
    [ein] = enrich("identifiers", [{"ein": "04-2103594"}], field="ein", kind="ein")
    assert (ein["ein_valid"], ein["ein_compact"], ein["ein_country"]) == (True, "042103594", "US")
