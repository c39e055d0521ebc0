"""A run's report as a PDF: one to three pages a compliance analyst can file.

fpdf2 lays it out with the Noto Sans fonts bundled in `fonts/` (OFL, see fonts/OFL.txt):
Latin, Greek and Cyrillic from Noto Sans, with Devanagari and Arabic as fallbacks, shaped
by HarfBuzz, so a name written in any of them prints as written. The PDF is made from the
stored report alone: the same report always gives the same document.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
from fpdf import FPDF
from fpdf.enums import XPos, YPos
from fpdf.fonts import FontFace

_FONTS = resources.files("openenrich.verify") / "fonts"
# The fallback faces, and the characters that call for each: a font is added only when
# the report needs it (subsetting each font cost 0.05 s a face).
_FALLBACKS = {
    "devanagari": ("NotoSansDevanagari", re.compile("[\u0900-\u097f\ua8e0-\ua8ff]")),
    "arabic": (
        "NotoSansArabic",
        re.compile("[\u0600-\u06ff\u0750-\u077f\ufb50-\ufdff\ufe70-\ufeff]"),
    ),
}
_VERDICT_COLOURS = {
    "verified": (22, 128, 61),
    "partially_verified": (180, 110, 0),
    "not_verified": (185, 28, 28),
    "needs_review": (124, 58, 237),
}
# Typography that Latin-1 lacks, and what stands in for it with the PDF's own fonts.
_TYPOGRAPHY = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u2013": "-",
        "\u2014": "-",
        "\u2022": "-",
        "\u2026": "...",
        "\u00a0": " ",
    }
)
_STATUS_LABELS = {"success": "passed", "failed": "failed", "not_found": "not checked"}
_INK = (17, 24, 39)
_MUTED = (90, 98, 112)


def render_pdf(report: Mapping[str, Any], *, run_id: str, created_at: str) -> bytes:
    text = orjson.dumps(report).decode()
    embed = not _is_latin1(text.translate(_TYPOGRAPHY) + run_id + created_at)
    if not embed:  # quotes and dashes as Latin-1 has them
        report = _plain(report)
    fallbacks = [name for name, (_, chars) in _FALLBACKS.items() if chars.search(text)]
    pdf = _Document(run_id, embed=embed, fallbacks=fallbacks)
    generated = str(report.get("generated_at", ""))
    with contextlib.suppress(ValueError):  # dated by the report: the same one, the same bytes
        pdf.set_creation_date(datetime.fromisoformat(generated.replace("Z", "+00:00")))
    pdf.add_page()
    _title(pdf, report, run_id, created_at)
    _section(pdf, "Why")
    for reason in report.get("reasons", []):
        _bullet(pdf, str(reason))
    _checks(pdf, "Checks", report.get("checks", []))
    if report.get("cross_checks"):
        _checks(pdf, "Cross-checks", report["cross_checks"])
    if report.get("not_checked"):
        _section(pdf, "Not checked")
        for item in report["not_checked"]:
            _bullet(pdf, f"{item['kind']} {item['input']}: {item['reason']}")
    if report.get("risk_flags"):
        _section(pdf, "Risk flags")
        for flag in report["risk_flags"]:
            _bullet(pdf, f"{flag['code'].replace('_', ' ')}: {flag['detail']}")
    if report.get("earlier_runs"):
        _section(pdf, "Earlier in this thread")
        for earlier in report["earlier_runs"]:
            _bullet(pdf, f"{earlier['run_id']}: {earlier.get('answer') or 'no answer'}")
    return bytes(pdf.output())


def _plain(value: Any) -> Any:
    """`value` with `_TYPOGRAPHY` applied to every string in it."""
    if isinstance(value, str):
        return value.translate(_TYPOGRAPHY)
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def _is_latin1(text: str) -> bool:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def write_pdf(path: Path, content: bytes) -> None:
    """Write `content` to `path` whole or not at all (a temporary file, then a rename).
    Not fsynced: the stored report makes the same PDF again if a crash loses it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}")  # two writers, two files
    temporary.write_bytes(content)
    os.replace(temporary, path)


class _Document(FPDF):
    def __init__(self, run_id: str, *, embed: bool, fallbacks: list[str]) -> None:
        super().__init__(format="A4")
        self.run_id = run_id
        self.set_margins(18, 18, 18)
        self.set_auto_page_break(auto=True, margin=18)
        # Text that Latin-1 holds prints in the PDF's own Helvetica: nothing to embed.
        # Anything else embeds Noto Sans, whose subsetting cost 50 ms a document.
        self.sans = "sans" if embed else "helvetica"
        self.bullet = "\u2022" if embed else "-"
        if embed:
            self.add_font("sans", "", str(_FONTS / "NotoSans-Regular.ttf"))
            self.add_font("sans", "B", str(_FONTS / "NotoSans-Bold.ttf"))
        for family in fallbacks:
            face = _FALLBACKS[family][0]
            self.add_font(family, "", str(_FONTS / f"{face}-Regular.ttf"))
            self.add_font(family, "B", str(_FONTS / f"{face}-Bold.ttf"))
        if fallbacks:
            self.set_fallback_fonts(fallbacks)
            self.set_text_shaping(True)  # HarfBuzz: joins Arabic, orders Devanagari
        self.set_title("Verification report")
        self.set_creator("OpenEnrich")
        self.set_text_color(*_INK)

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(self.sans, "", 8)
        self.set_text_color(*_MUTED)
        self.cell(0, 5, f"OpenEnrich verification report \u00b7 {self.run_id}", align="L")
        self.cell(0, 5, f"Page {self.page_no()} of {{nb}}", align="R")
        self.set_text_color(*_INK)


def _title(pdf: _Document, report: Mapping[str, Any], run_id: str, created_at: str) -> None:
    pdf.set_font(pdf.sans, "B", 18)
    pdf.cell(0, 10, "Verification report", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    subject = report.get("subject") or {}
    pdf.set_font(pdf.sans, "", 11)
    pdf.set_text_color(*_MUTED)
    details = [
        ("Subject", subject.get("name") or "not named in the request"),
        ("Birth date", subject.get("birth_date") or "not given"),
        ("Workflow", report.get("workflow") or "none (every applicable check)"),
        ("Run", run_id),
        ("Requested", created_at),
        ("Generated", str(report.get("generated_at", ""))),
    ]
    for label, value in details:
        pdf.cell(30, 6, label)
        pdf.set_text_color(*_INK)
        pdf.multi_cell(0, 6, str(value), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_text_color(*_MUTED)
    pdf.ln(3)
    verdict = str(report.get("verdict", "not_verified"))
    pdf.set_fill_color(*_VERDICT_COLOURS.get(verdict, _MUTED))
    pdf.set_text_color(255, 255, 255)
    pdf.set_font(pdf.sans, "B", 13)
    label = verdict.replace("_", " ").capitalize()
    pdf.cell(pdf.get_string_width(label) + 12, 9, label, fill=True, align="C")
    pdf.set_text_color(*_INK)
    pdf.set_fill_color(255, 255, 255)
    pdf.ln(12)


def _section(pdf: _Document, title: str) -> None:
    pdf.ln(2)
    pdf.set_font(pdf.sans, "B", 12)
    pdf.cell(0, 8, title, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_draw_color(210, 214, 220)
    pdf.line(pdf.l_margin, pdf.get_y(), pdf.w - pdf.r_margin, pdf.get_y())
    pdf.ln(1.5)
    pdf.set_font(pdf.sans, "", 10)


def _bullet(pdf: _Document, text: str) -> None:
    pdf.set_font(pdf.sans, "", 10)
    pdf.cell(5, 5.5, pdf.bullet)
    pdf.multi_cell(0, 5.5, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _checks(pdf: _Document, title: str, checks: Sequence[Mapping[str, Any]]) -> None:
    _section(pdf, title)
    if not checks:
        pdf.cell(0, 6, "None.", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        return
    pdf.set_font(pdf.sans, "", 9.5)
    with pdf.table(
        col_widths=(28, 30, 16, 76),
        text_align=("LEFT", "LEFT", "LEFT", "LEFT"),
        line_height=5.2,
        padding=1.2,
        headings_style=FontFace(emphasis="BOLD", fill_color=(243, 244, 246)),
    ) as table:
        table.row(["Check", "Input", "Result", "Finding"])
        for check in checks:
            table.row(
                [
                    str(check.get("tool", "")).replace("_", " "),
                    str(check.get("input", "")),
                    _result_label(check),
                    str(check.get("summary", "")),
                ]
            )


def _result_label(check: Mapping[str, Any]) -> str:
    """What a check came to, in a word: a cross-check's finding rather than "passed"."""
    status = str(check.get("status", ""))
    result = check.get("result") or {}
    if status == "success" and check.get("tool") == "sanctions_screening":
        return "candidates" if result.get("candidates") else "no match"
    if status == "success" and check.get("tool") == "name_match":
        return f"{result.get('score', 0):g}%"
    return _STATUS_LABELS.get(status, status)


def pdf_path(data_dir: Path, org_id: str, run_id: str) -> Path:
    """Where a run's PDF is kept: the data folder, per organisation."""
    return data_dir / "reports" / org_id / f"{run_id}.pdf"
