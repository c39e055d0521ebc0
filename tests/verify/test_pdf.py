"""The report as a PDF: made from the stored report alone, names in any script printed
with a font that has them."""

from __future__ import annotations

import re
from typing import Any

import pytest

from openenrich.verify.pdf import render_pdf


def report(name: str) -> dict[str, Any]:
    return {
        "subject": {"name": name, "birth_date": None},
        "workflow": "kyc-verification",
        "verdict": "needs_review",
        "reasons": [f"{name} resembles an entry of the sanctions list."],
        "checks": [
            {
                "call_id": "call_1",
                "tool": "pan_verification",
                "kind": "pan",
                "input": "ABCPS1234K",
                "status": "success",
                "summary": "PAN ABCPS1234K is well formed.",
                "result": {},
            }
        ],
        "cross_checks": [],
        "not_checked": [{"kind": "phone", "input": "+91 98xxxxxx10", "reason": "masked"}],
        "risk_flags": [],
        "earlier_runs": [],
        "generated_at": "2026-12-07T15:00:00.000Z",
    }


@pytest.mark.parametrize(
    ("name", "fonts"),
    [
        ("Rahul Sharma", set()),  # Latin-1: the PDF's own Helvetica, nothing embedded
        ("Władysław Żeleński", {b"NotoSans"}),
        ("राहुल शर्मा", {b"NotoSans", b"NotoSansDevanagari"}),
        ("راهول شارما", {b"NotoSans", b"NotoSansArabic"}),
    ],
)
def test_a_name_prints_with_a_font_of_its_script(name: str, fonts: set[bytes]) -> None:
    pdf = render_pdf(report(name), run_id="run_1", created_at="2026-12-07T14:59:58.000Z")
    assert pdf.startswith(b"%PDF-")
    embedded = set(re.findall(rb"/BaseFont /[A-Z]{6}\+(NotoSans[A-Za-z]*?)(?:Bold)?\b", pdf))
    assert embedded == fonts
    assert (b"/BaseFont /Helvetica" in pdf) == (not fonts)


def test_the_same_report_gives_the_same_pdf() -> None:
    # A server that lost the file makes it again: the link's reader gets the same document.
    first = render_pdf(report("Rahul Sharma"), run_id="run_1", created_at="2026-12-07")
    assert render_pdf(report("Rahul Sharma"), run_id="run_1", created_at="2026-12-07") == first


def test_typographic_quotes_keep_to_the_pdfs_own_fonts() -> None:
    quoted = report("Rahul Sharma")
    quoted["checks"][0]["summary"] = (
        "Website https://a.example is up (200, \u201cA \u2014 B\u201d)."
    )
    pdf = render_pdf(quoted, run_id="run_1", created_at="2026-12-07")
    assert b"/BaseFont /Helvetica" in pdf
    assert b"NotoSans" not in pdf
