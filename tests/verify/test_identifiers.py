"""What a verification request's message is read as: per kind, messages that must yield
exactly the identifiers listed (nothing else), and messages that must not yield the kind."""

from __future__ import annotations

import pytest

from openenrich.verify.identifiers import Found, find
from openenrich.verify.tools import REGISTRY


def masked(value: str) -> Found:
    return Found("phone", value, masked=True)


# kind -> [(message, everything `find` must return for it)]
FINDS: dict[str, list[tuple[str, list[Found]]]] = {
    "url": [
        ("See https://acme.com/about for details", [Found("url", "https://acme.com/about")]),
        (
            "Site: http://shop.example.in/path?q=1.",
            [Found("url", "http://shop.example.in/path?q=1")],
        ),
    ],
    "email": [
        ("Mail rahul.sharma@acme.com today", [Found("email", "rahul.sharma@acme.com")]),
        ("Write to ops+kyc@acme.co.in.", [Found("email", "ops+kyc@acme.co.in")]),
    ],
    "domain": [
        ("Company website acme.com", [Found("domain", "acme.com")]),
        ("Check www.acme.co.uk.", [Found("domain", "www.acme.co.uk")]),
        ("Domain: Infosys.COM", [Found("domain", "infosys.com")]),  # as DNS reads it
        ("Is tata-steel.in legit?", [Found("domain", "tata-steel.in")]),
    ],
    "bic": [
        ("BIC DEUTDEFF", [Found("bic", "DEUTDEFF")]),
        ("SWIFT code: COBADEFFXXX", [Found("bic", "COBADEFFXXX")]),
        ("Wire to DEUTDEFF500 today", [Found("bic", "DEUTDEFF500")]),  # a digit: no keyword needed
        ("swift/bic is MARKDEF1100", [Found("bic", "MARKDEF1100")]),
    ],
    "lei": [
        ("LEI 529900T8BM49AURSDO55", [Found("lei", "529900T8BM49AURSDO55")]),
        ("entity 529900T8BM49AURSDO55 in GLEIF", [Found("lei", "529900T8BM49AURSDO55")]),
        ("Apple Inc. HWUPKR0MPOU8FGXBT394", [Found("lei", "HWUPKR0MPOU8FGXBT394")]),
        # Named an LEI: found though its check digits are wrong, for the check to say so.
        ("LEI: 529900T8BM49AURSDO56", [Found("lei", "529900T8BM49AURSDO56")]),
    ],
    "epic": [
        ("Voter ID ABC1234567", [Found("epic", "ABC1234567")]),
        ("EPIC no. XYZ7654321.", [Found("epic", "XYZ7654321")]),
    ],
    "ssn": [
        ("SSN 078-05-1120", [Found("ssn", "078-05-1120")]),
        ("ssn: 536904399", [Found("ssn", "536904399")]),
        ("Social security 536-90-4399", [Found("ssn", "536-90-4399")]),
    ],
    "gstin": [
        # The PAN inside a GSTIN is the GSTIN's, not a PAN of its own.
        ("GSTIN 27AAPFU0939F1ZV", [Found("gstin", "27AAPFU0939F1ZV")]),
        (
            "GSTIN 27AAPFU0939F1ZV, PAN AAPFU0939F",
            [Found("gstin", "27AAPFU0939F1ZV"), Found("pan", "AAPFU0939F")],
        ),
    ],
    "pan": [
        ("PAN AAPFU0939F", [Found("pan", "AAPFU0939F")]),
        ("PAN ABCDE1234F, please", [Found("pan", "ABCDE1234F")]),  # invalid: the check says why
    ],
    "phone": [
        ("Mobile +91 98765 43210", [Found("phone", "+91 98765 43210")]),
        ("Call 9876543210", [Found("phone", "9876543210")]),  # India, by default
        ("US office +1 415 555 2671", [Found("phone", "+1 415 555 2671")]),
        ("Phone 98XXXXXX10", [masked("98XXXXXX10")]),
        (
            "Verify identity: Rahul Sharma, +91 98xxxxxx10, PAN ABCDE1234F",
            [Found("pan", "ABCDE1234F"), masked("+91 98xxxxxx10")],
        ),
    ],
    "aadhaar": [("Aadhaar 2341 2341 2346", [Found("aadhaar", "2341 2341 2346")])],
    "uan": [("UAN 100123456789", [Found("uan", "100123456789")])],
    "emirates_id": [
        ("Emirates ID 784-1987-1234567-1", [Found("emirates_id", "784-1987-1234567-1")])
    ],
    "ein": [("EIN 04-2103594", [Found("ein", "04-2103594")])],
    "iban": [
        ("IBAN DE89 3704 0044 0532 0130 00", [Found("iban", "DE89 3704 0044 0532 0130 00")]),
        # Twenty characters, as an LEI has: an IBAN, since it is a valid one.
        ("IBAN AT611904300234573201", [Found("iban", "AT611904300234573201")]),
    ],
    "vat": [("VAT DE136695976", [Found("vat", "DE136695976")])],
    "vehicle_rc": [
        ("Car MH 12 AB 1234", [Found("vehicle_rc", "MH 12 AB 1234")]),
        ("Car KA01AB1234", [Found("vehicle_rc", "KA01AB1234")]),
    ],
}

# kind -> messages that must not yield it
NOT_FOUND: dict[str, list[str]] = {
    "domain": [
        "Mail rahul@acme.com",  # the email's
        "See https://acme.com/about",  # the URL's
        "Attached report.pdf and index.html",  # no such top-level domains
        "e.g. this, i.e. that",
        "Acme Pvt.Ltd and Foo Co.Ltd",  # legal forms, though .ltd is a top-level domain
        "version 3.14 and 1.2.3.4",
    ],
    "bic": [
        "BUSINESS DILIGENCE COMPLETE",  # BUSI NE SS fits the shape; nothing says BIC
        "Pay DEUTDEFF now",  # no keyword, no digit
        "BIC DEUTXXFF",  # XX is no country
        "bic deutdeff",  # BICs are written in capitals
        "PAN ABCDE1234F",
    ],
    "lei": [
        "ref 529900T8BM49AURSDO56",  # wrong check digits, and not named an LEI
        "id 12345678901234567890",  # a long number
        "IBAN AT611904300234573201",
    ],
    "epic": ["voter AB12345678", "voter ABCD1234567", "voter abc1234567", "PAN ABCDE1234F"],
    "ssn": [
        "call 536904399",  # nine digits, not named an SSN
        "order 536-904-399",
        "EIN 04-2103594",
    ],
    "pan": ["GSTIN 27AAPFU0939F1ZV", "PAN abcde1234f", "PAN ABCDE12345", "EPIC ABC1234567"],
    "phone": [
        "PIN 560001",
        "Phone +91 12345",
        "EPIC ABC1234567",  # its digits are the EPIC's
        "Aadhaar 2341 2341 2346",
        "SSN 078-05-1120",
    ],
    "email": ["rahul at acme dot com"],
    "url": ["www.acme.com/about without a scheme"],
}


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        pytest.param(message, expected, id=f"{kind}: {message}")
        for kind, cases in FINDS.items()
        for message, expected in cases
    ],
)
def test_finds_exactly(message: str, expected: list[Found]) -> None:
    assert find(message) == expected


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        pytest.param(kind, message, id=f"{kind}: {message}")
        for kind, messages in NOT_FOUND.items()
        for message in messages
    ],
)
def test_does_not_find(kind: str, message: str) -> None:
    assert kind not in {found.kind for found in find(message)}


def test_every_kind_a_tool_checks_is_found() -> None:
    """Every kind but the subject's name, which `verify.subject` reads (not a finder)."""
    assert {tool.kind for tool in REGISTRY.values()} - {"name"} <= set(FINDS)
