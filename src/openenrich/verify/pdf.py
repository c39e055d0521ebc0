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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
from fpdf import FPDF
from fpdf.enums import MethodReturnValue, XPos, YPos

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
    """An A4 page with the report's typography, and the two things its layout needs from
    a font: breaking text into lines that fit a width, and printing one such line.

    A Latin-1 report does both itself: word-wrapping by `get_string_width` and printing
    with `text()` costs microseconds a line, where fpdf2's `multi_cell` costs half a
    millisecond and its `Table` lays every cell out twice (the PDF took 9 ms, most of it
    there). Other scripts go through `multi_cell` and `cell`, which shape the text with
    HarfBuzz and switch to a fallback font where a character calls for one.
    """

    def __init__(self, run_id: str, *, embed: bool, fallbacks: list[str]) -> None:
        super().__init__(format="A4")
        self.run_id = run_id
        self.embed = embed
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
            self.set_text_shaping(
                True, direction="ltr"
            )  # HarfBuzz: joins Arabic, orders Devanagari
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

    def wrap(self, text: str, width: float) -> list[str]:
        """`text` in the current font, broken into lines that fit a cell `width` wide
        (its inner margins included)."""
        if self.embed:
            lines = self.multi_cell(
                width, 5, text, align="L", dry_run=True, output=MethodReturnValue.LINES
            )
            return list(lines) or [""]  # type: ignore[arg-type]
        return _wrap(self.get_string_width, text, width - 2 * self.c_margin)

    def print_line(self, x: float, y: float, width: float, height: float, text: str) -> None:
        """One line from `wrap` in a cell at (x, y), as `cell` would place it."""
        if self.embed:
            self.set_xy(x, y)
            self.cell(width, height, text)
        else:
            self.text(x + self.c_margin, y + 0.5 * height + 0.3 * self.font_size, text)

    def paragraph(self, x: float, width: float, height: float, text: str) -> None:
        """`text` wrapped at `width`, from the current line down, onto new pages as needed."""
        for line in self.wrap(text, width):
            self.make_room(height)
            y = self.get_y()
            self.print_line(x, y, width, height, line)
            self.set_y(y + height)

    def make_room(self, height: float) -> bool:
        """A new page unless `height` fits below the current line; whether it took one."""
        if self.get_y() + height <= self.page_break_trigger:
            return False
        self.add_page()
        return True


def _wrap(width_of: Callable[[str], float], text: str, width: float) -> list[str]:
    """Greedy word wrap; a word wider than `width` (a long URL) is cut where it overflows."""
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        line = ""
        for word in paragraph.split():
            candidate = f"{line} {word}" if line else word
            if width_of(candidate) <= width:
                line = candidate
                continue
            if line:
                lines.append(line)
            while width_of(word) > width:
                used, cut = 0.0, 0
                for char in word:
                    used += width_of(char)
                    if used > width:
                        break
                    cut += 1
                cut = max(cut, 1)
                lines.append(word[:cut])
                word = word[cut:]
            line = word
        lines.append(line)
    return lines


def _title(pdf: _Document, report: Mapping[str, Any], run_id: str, created_at: str) -> None:
    pdf.set_font(pdf.sans, "B", 18)
    pdf.cell(0, 10, "Verification report", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    subject = report.get("subject") or {}
    pdf.set_font(pdf.sans, "", 11)
    details = [
        ("Subject", subject.get("name") or "not named in the request"),
        ("Birth date", subject.get("birth_date") or "not given"),
        ("Workflow", report.get("workflow") or "none (every applicable check)"),
        ("Run", run_id),
        ("Requested", created_at),
        ("Generated", str(report.get("generated_at", ""))),
    ]
    for label, value in details:
        pdf.set_text_color(*_MUTED)
        pdf.print_line(pdf.l_margin, pdf.get_y(), 30, 6, label)
        pdf.set_text_color(*_INK)
        pdf.paragraph(pdf.l_margin + 30, pdf.epw - 30, 6, str(value))
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
    pdf.make_room(8 + 1.5 + 2 * 6)  # a heading is never the last line of a page
    pdf.set_font(pdf.sans, "B", 12)
    pdf.cell(0, 8, title, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_draw_color(210, 214, 220)
    pdf.line(pdf.l_margin, pdf.get_y(), pdf.w - pdf.r_margin, pdf.get_y())
    pdf.ln(1.5)
    pdf.set_font(pdf.sans, "", 10)


def _bullet(pdf: _Document, text: str) -> None:
    pdf.set_font(pdf.sans, "", 10)
    pdf.make_room(5.5)
    pdf.print_line(pdf.l_margin, pdf.get_y(), 5, 5.5, pdf.bullet)
    pdf.paragraph(pdf.l_margin + 5, pdf.epw - 5, 5.5, text)


# The checks' table: its columns' shares of the page's width, its type and spacing.
_COLUMNS = (0.18, 0.2, 0.13, 0.49)
_TABLE_FONT_SIZE = 9.5
_TABLE_LINE = 5.2
_TABLE_PADDING = 1.2
_CELL_MAX_LINES = 40  # a row stays within a page
_HEADING_FILL = (243, 244, 246)


@dataclass(frozen=True, slots=True)
class _Row:
    cells: list[list[str]]
    bold: bool

    @property
    def height(self) -> float:
        return max(map(len, self.cells)) * _TABLE_LINE + 2 * _TABLE_PADDING


def _measure(pdf: _Document, texts: Sequence[str], widths: Sequence[float], bold: bool) -> _Row:
    pdf.set_font(pdf.sans, "B" if bold else "", _TABLE_FONT_SIZE)
    cells = []
    for text, width in zip(texts, widths, strict=True):
        lines = pdf.wrap(text, width)
        if len(lines) > _CELL_MAX_LINES:
            lines = [*lines[: _CELL_MAX_LINES - 1], "..."]
        cells.append(lines)
    return _Row(cells, bold)


def _draw(pdf: _Document, row: _Row, widths: Sequence[float]) -> None:
    """The row's cells, bordered, their lines centred vertically as in a spreadsheet."""
    pdf.set_font(pdf.sans, "B" if row.bold else "", _TABLE_FONT_SIZE)
    pdf.set_fill_color(*(_HEADING_FILL if row.bold else (255, 255, 255)))
    x, y, height = pdf.l_margin, pdf.get_y(), row.height
    for lines, width in zip(row.cells, widths, strict=True):
        pdf.rect(x, y, width, height, style="DF" if row.bold else "D")
        top = y + (height - len(lines) * _TABLE_LINE) / 2
        for n, line in enumerate(lines):
            pdf.print_line(
                x + _TABLE_PADDING - pdf.c_margin,
                top + n * _TABLE_LINE,
                width - 2 * (_TABLE_PADDING - pdf.c_margin),
                _TABLE_LINE,
                line,
            )
        x += width
    pdf.set_fill_color(255, 255, 255)
    pdf.set_y(y + height)


def _checks(pdf: _Document, title: str, checks: Sequence[Mapping[str, Any]]) -> None:
    _section(pdf, title)
    if not checks:
        pdf.cell(0, 6, "None.", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        return
    widths = [pdf.epw * share for share in _COLUMNS]
    inner = [width - 2 * _TABLE_PADDING + 2 * pdf.c_margin for width in widths]
    heading = _measure(pdf, ["Check", "Input", "Result", "Finding"], inner, bold=True)
    rows = [
        _measure(
            pdf,
            [
                str(check.get("tool", "")).replace("_", " "),
                str(check.get("input", "")),
                _result_label(check),
                str(check.get("summary", "")),
            ],
            inner,
            bold=False,
        )
        for check in checks
    ]
    pdf.make_room(heading.height + rows[0].height)  # a heading never ends a page
    _draw(pdf, heading, widths)
    for row in rows:
        if pdf.make_room(row.height):  # a table that goes on repeats its heading
            _draw(pdf, heading, widths)
        _draw(pdf, row, widths)


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
