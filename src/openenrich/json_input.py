"""The rules every JSON body the server reads is held to, before anything parses it.

- It is UTF-8 (RFC 8259). Bytes that are not, and lone surrogates (`\\ud800`, or the same
  encoded as bytes), could not be written to Parquet, a database or an answer later.
- It nests at most `max_depth` levels (setting `json_max_depth`), counting every array
  and object of the body. The C parsers we use recurse: past about 950 levels msgspec and
  the standard library raise RecursionError, orjson stops at 1024 and cannot encode past
  254. One limit well below those means whatever we accept we can also store, query and
  send back.
- A body a route reads into its model holds no NUL (`\u0000`) in any string, key or
  value (`holds_nul`): PostgreSQL text cannot store one, and SQLite would, so the same
  request would be a 500 on one backend and stored on the other. Ingested events may:
  they only go to the log and Parquet.

The depth is found without a parser, at the speed of `bytes` methods (about 1 ns a byte):
the strings are taken out (a string with brackets in it is rare and takes a slower path),
brackets are all that is kept, and innermost pairs are removed one level per pass; a long
rest (a body built to be deep everywhere) has its running depth summed by Arrow.
"""

from __future__ import annotations

import array
import itertools
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

# Every byte but the structural ones, deleted by bytes.translate; braces become brackets.
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'"[]{}')
_BRACKETS = bytes.maketrans(b"{}", b"[]")
# An opening bracket as +1, a closing one as -1 (signed bytes).
_STEPS = bytes.maketrans(b"[]", b"\x01\xff")
# Past this many brackets the running depth is summed by Arrow, not in Python.
_ARROW_FROM = 4096


class InvalidJSON(ValueError):
    """A body that breaks one of the rules, or is not JSON; `message` says which."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def check_utf8(body: bytes) -> None:
    if body.isascii():
        return
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidJSON(f"the body is not valid UTF-8 (byte {error.start})") from None


def _brackets(body: bytes) -> bytes:
    """The body's brackets outside strings, in order, braces as brackets."""
    if b"\\" in body:  # an escaped quote or backslash cannot end a string
        body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    kept = body.translate(_BRACKETS, _NOT_STRUCTURE)
    quotes = kept.count(b'"')
    if quotes and kept.count(b'""') * 2 != quotes:  # a string holds a bracket: rare
        return b"".join(kept.split(b'"')[::2])
    return kept.translate(None, b'"')


def _deepest(brackets: bytes) -> int:
    """The highest running depth of a bracket sequence."""
    steps = brackets.translate(_STEPS)
    if len(steps) < _ARROW_FROM:
        return max(0, max(itertools.accumulate(array.array("b", steps))))
    signed = pa.Array.from_buffers(pa.int8(), len(steps), [None, pa.py_buffer(steps)])
    depth = pc.max(pc.cumulative_sum(signed.cast(pa.int32()))).as_py()
    return max(0, depth or 0)


def check_depth(body: bytes, max_depth: int) -> None:
    """Raise InvalidJSON if `body` nests deeper than `max_depth`.

    Malformed bodies (brackets that do not pair up) are left to the parser to report,
    once it is sure that it will not recurse past the limit to do so.
    """
    if len(body) <= 2 * max_depth:
        return
    brackets = _brackets(body)
    # On a short sequence each pass takes away the innermost pairs, one level, and a
    # few passes finish a typical body; a long one has its running depth summed.
    removed = 0
    while brackets and removed < max_depth and len(brackets) < _ARROW_FROM:
        peeled = brackets.replace(b"[]", b"")
        if len(peeled) == len(brackets):  # only `]…][…[` is left: they do not pair up
            break
        brackets = peeled
        removed += 1
    if brackets and removed + _deepest(brackets) > max_depth:
        raise InvalidJSON(f"JSON nested deeper than {max_depth} levels")


def check(body: bytes, max_depth: int) -> None:
    check_utf8(body)
    check_depth(body, max_depth)


def holds_nul(value: Any) -> bool:
    """Whether a string in parsed JSON `value`, key or value, holds NUL."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any("\x00" in key or holds_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(holds_nul(item) for item in value)
    return False


def loads(body: bytes, max_depth: int) -> Any:
    """Parse a JSON body held to the rules above."""
    check(body, max_depth)
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise InvalidJSON(error.msg) from None
