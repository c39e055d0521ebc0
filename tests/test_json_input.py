"""json_input's depth check against the true depth of many generated documents."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from openenrich.json_input import InvalidJSON, check, check_depth

TRICKY = ["[", "]", "{", "}", '"', "\\", '\\"', "\\\\", '"[', "]\\", "é", "\u2028", ""]


def document(rng: random.Random, depth: int) -> Any:
    if depth == 0:
        return rng.choice([1, 2.5, None, True, "".join(rng.choices(TRICKY, k=rng.randint(0, 4)))])
    # One child carries the depth down; its siblings stay shallow, so the size stays small.
    inner = [
        document(rng, depth - 1 if i == 0 else rng.randint(0, min(2, depth - 1))) for i in range(3)
    ]
    if rng.random() < 0.5:
        return inner
    return {"".join(rng.choices(TRICKY, k=2)) + str(i): value for i, value in enumerate(inner)}


def true_depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((true_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((true_depth(v) for v in value.values()), default=0)
    return 0


@pytest.mark.parametrize("ensure_ascii", [True, False])
def test_the_depth_found_is_the_true_depth(ensure_ascii: bool) -> None:
    rng = random.Random(7)
    for _ in range(400):
        value = document(rng, rng.randint(1, 40))
        body = json.dumps(value, ensure_ascii=ensure_ascii).encode()
        depth = true_depth(value)
        for limit in (depth - 1, depth):
            if limit < 1:
                continue
            if depth > limit:
                with pytest.raises(InvalidJSON):
                    check_depth(body, limit)
            else:
                check_depth(body, limit)


def test_long_bodies_are_measured_the_same_way() -> None:
    # Past a few thousand brackets the running depth is summed rather than peeled.
    wide = b"[" + b",".join([b"[[1]]"] * 5000) + b"]"
    check_depth(wide, 3)
    with pytest.raises(InvalidJSON, match="deeper than 2 levels"):
        check_depth(wide, 2)
    deep_everywhere = (b"[" * 63 + b"]" * 63) * 1000
    check_depth(deep_everywhere, 63)
    with pytest.raises(InvalidJSON):
        check_depth(deep_everywhere, 62)


@pytest.mark.parametrize(
    "body",
    [b"[" * 100_000, b"[" * 40 + b"]" * 41 + b"[" * 1000, b'{"a": ' * 70 + b"1"],
)
def test_malformed_bodies_that_would_open_too_deep_are_refused(body: bytes) -> None:
    with pytest.raises(InvalidJSON, match="nested deeper"):
        check_depth(body, 64)


def test_malformed_but_shallow_is_left_to_the_parser() -> None:
    check_depth(b'{"a": [1, 2}' + b" " * 200, 64)
    check_depth(b"]]]" + b" " * 200, 64)


@pytest.mark.parametrize("body", [b'["\xff"]', b'{"\xfe": 1}', b'["\xed\xa0\x80"]', b'["\xc3"]'])
def test_bytes_that_are_not_utf8_are_refused(body: bytes) -> None:
    with pytest.raises(InvalidJSON, match="not valid UTF-8"):
        check(body, 64)
