"""Built-in checks called directly, for what the reference's examples do not reach."""

from __future__ import annotations

import asyncio

import httpx

from openenrich.verify.tools import ToolEnv, ToolResult, check_phone


def phone(value: str) -> ToolResult:
    async def work() -> ToolResult:
        async with httpx.AsyncClient() as http:
            return await check_phone(value, ToolEnv(http))

    return asyncio.run(work())


def test_a_valid_phone_has_its_line_type_carrier_and_region() -> None:
    """The carrier and region directories load on the first check (not at start)."""
    result = phone("+91 98765 43210")
    assert result.status == "success", result
    assert result.output["e164"] == "+919876543210"
    assert result.summary.startswith("Phone +919876543210 is a valid mobile number")
    assert result.output["carrier"]  # from the carrier directory
    assert result.output["region"]  # from the geocoder
    assert phone("+91 12345").status == "failed"
