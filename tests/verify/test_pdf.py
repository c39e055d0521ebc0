"""The report as a PDF: made from the stored report alone, names in any script printed
with a font that has them."""

from __future__ import annotations

import re
import zlib
from typing import Any

import pytest

from openenrich.verify.pdf import _wrap, render_pdf


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


def page_texts(pdf: bytes) -> list[list[str]]:
    """The strings each page prints, in order (Helvetica pages: `(text) Tj`)."""
    pages = []
    for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.DOTALL):
        content = zlib.decompress(stream)
        if b" Tj" in content:
            pages.append([s.decode("latin-1") for s in re.findall(rb"\((.*?)\) Tj", content)])
    return pages


def test_a_long_report_runs_on_with_the_tables_heading_on_every_page() -> None:
    long = report("Rahul Sharma")
    long["checks"] = [
        {**long["checks"][0], "input": f"ABCPS{n:04d}K", "summary": f"Check number {n} passed."}
        for n in range(60)
    ]
    pages = page_texts(render_pdf(long, run_id="run_1", created_at="2026-12-07"))
    assert len(pages) >= 3
    printed = [text for page in pages for text in page]
    assert [text for text in printed if text.startswith("Check number")] == [
        f"Check number {n} passed." for n in range(60)
    ]
    for number, page in enumerate(pages, start=1):
        first_row = next(n for n, text in enumerate(page) if text.startswith("ABCPS")) - 1
        assert page[first_row - 4 : first_row] == ["Check", "Input", "Result", "Finding"]
        assert page[-2:] == [f"Page {number} of ", str(len(pages))]  # the footer


def test_text_wider_than_its_cell_wraps_at_words_and_cuts_only_what_no_line_holds() -> None:
    assert _wrap(len, "PAN ABCDE1234F is not valid", 12) == ["PAN", "ABCDE1234F", "is not valid"]
    assert _wrap(len, "https://example.com/a/long/path", 12) == [
        "https://exam",
        "ple.com/a/lo",
        "ng/path",
    ]
    assert _wrap(len, "one\ntwo  three", 20) == ["one", "two three"]
    assert _wrap(len, "", 10) == [""]
