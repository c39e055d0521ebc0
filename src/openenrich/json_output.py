"""Values our answers hold that JSON has no type for."""

from __future__ import annotations

from decimal import Decimal

# What most JSON readers hold exactly as an integer (JavaScript's is 2**53, but signed
# and unsigned 64-bit integers are what our columns and databases have).
_SMALLEST = -(2**63)
_PAST_LARGEST = 2**64


def decimal_number(value: Decimal) -> int | float | str:
    """A decimal (credits, costs, DuckDB's HUGEINT sums) as a JSON number: a whole one as
    an integer, others as a float. A whole one past 64 bits stays exact as text: as a
    number most readers would lose its last digits."""
    if value != value.to_integral_value():
        return float(value)
    return int(value) if _SMALLEST <= value < _PAST_LARGEST else str(value)
