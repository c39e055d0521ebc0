"""Text we did not choose (a client's field names, stream ids, request bodies) made fit for
the column it is written to, the same way on both backends.

PostgreSQL text cannot hold NUL and enforces `String(n)` lengths; SQLite does neither. A
value that breaks either is stored on SQLite and is a DataError on PostgreSQL, and in a
background writer that retries, one such value holds back everything written with it.
"""

from __future__ import annotations

from sqlalchemy import Column, String
from sqlalchemy.orm import InstrumentedAttribute

REPLACEMENT = "\ufffd"  # what a NUL becomes: the Unicode replacement character
ELLIPSIS = "…"  # the last character of a value that was cut


def column_length(column: InstrumentedAttribute[str] | InstrumentedAttribute[str | None]) -> int:
    """The `n` of a `String(n)` column, or 0 for unbounded text."""
    expression = column.expression
    assert isinstance(expression, Column)
    kind = expression.type
    return kind.length or 0 if isinstance(kind, String) else 0


def storable(text: str, length: int = 0) -> str:
    """`text` with each NUL and lone surrogate replaced, cut to `length` characters (0: any
    length)."""
    if "\x00" in text:
        text = text.replace("\x00", REPLACEMENT)
    try:
        text.encode()
    except UnicodeEncodeError:  # a lone surrogate: no database driver can encode it
        text = text.encode(errors="surrogatepass").decode(errors="replace")
    if length and len(text) > length:
        text = text[: length - 1] + ELLIPSIS
    return text
