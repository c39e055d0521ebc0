"""Built-in checks called directly, for what the reference's examples do not reach."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from openenrich.config import Settings
from openenrich.email.pool import SmtpPool
from openenrich.verify.tools import REGISTRY, ToolEnv, ToolFunction, ToolResult, check_phone


def run(tool: ToolFunction, value: str) -> ToolResult:
    """One check, with what a worker gives it (these tools use only the HTTP client)."""

    async def work() -> ToolResult:
        settings = Settings()
        async with httpx.AsyncClient() as http:
            return await tool(value, ToolEnv(http, settings, SmtpPool.from_settings(settings)))

    return asyncio.run(work())


def phone(value: str) -> ToolResult:
    return run(check_phone, value)


def test_a_valid_phone_has_its_line_type_carrier_and_region() -> None:
    """The carrier and region directories load on the first check (not at start)."""
    result = phone("+91 98765 43210")
    assert result.status == "success", result
    assert result.output["e164"] == "+919876543210"
    assert result.summary.startswith("Phone +919876543210 is a valid mobile number")
    assert result.output["carrier"]  # from the carrier directory
    assert result.output["region"]  # from the geocoder
    assert phone("+91 12345").status == "failed"


def test_every_tool_keeps_its_name_kind_price_and_description() -> None:
    tools = {
        name: f"{tool.kind} {tool.price} {tool.description}" for name, tool in REGISTRY.items()
    }
    assert tools == {
        "pan_verification": "pan 2.0 Indian PAN: format and holder type",
        "aadhaar_verification": "aadhaar 2.0 Aadhaar number: Verhoeff checksum",
        "gstin_verification": "gstin 1.5 Indian GSTIN: checksum, state, PAN",
        "uan_verification": "uan 1.5 Indian UAN (EPFO): format",
        "vehicle_rc_verification": "vehicle_rc 1.5 Indian vehicle registration: format and state",
        "mobile_verification": "phone 1.0 Phone number: numbering plan, line type, carrier",
        "email_verification": "email 0.5 Email address: syntax, mail servers, lists, SMTP probe "
        "if enabled",
        "ein_verification": "ein 1.0 US EIN: format and issuing campus",
        "iban_verification": "iban 1.0 IBAN: country format and checksum",
        "vat_verification": "vat 1.0 EU VAT number: country format and checksum",
        "emirates_id_verification": "emirates_id 1.5 UAE Emirates ID: format and Luhn checksum",
        "website_check": "url 0.5 Website: reachable, status, title",
    }


CHECKSUM = "The number's checksum or check digit is invalid"


def valid(summary: str, **output: object) -> ToolResult:
    return ToolResult("success", summary, {"valid": True, **output})


def invalid(summary: str) -> ToolResult:
    return ToolResult("failed", summary, {"valid": False})


# What each python-stdnum check answers, valid and not: (tool, value) -> result.
STDNUM_CHECKS = {
    ("aadhaar_verification", "234123412346"): valid(
        "Aadhaar XXXX XXXX 2346 passes its checksum.", last4="2346"
    ),
    ("aadhaar_verification", "2341 2341 2347"): invalid(
        f"Aadhaar 2341 2341 2347 is not valid: {CHECKSUM}."
    ),
    ("aadhaar_verification", "1234"): invalid(
        "Aadhaar 1234 is not valid: The number has an invalid length."
    ),
    ("gstin_verification", "27AAPFU0939F1ZV"): valid(
        "GSTIN 27AAPFU0939F1ZV is valid (state code 27, PAN AAPFU0939F).",
        state_code="27",
        pan="AAPFU0939F",
    ),
    ("gstin_verification", "27AAPFU0939F1ZX"): invalid(
        f"GSTIN 27AAPFU0939F1ZX is not valid: {CHECKSUM}."
    ),
    ("ein_verification", "04-2103594"): valid(
        "EIN 04-2103594 is valid (issued by Brookhaven).", campus="Brookhaven"
    ),
    ("ein_verification", "07-1234567"): invalid(
        "EIN 07-1234567 is not valid: One of the parts of the number are invalid or unknown."
    ),
    ("ein_verification", "12345"): invalid(
        "EIN 12345 is not valid: The number has an invalid format."
    ),
    ("iban_verification", "GR16 0110 1050 0000 1054 7023 795"): valid(
        "IBAN GR16 0110 1050 0000 1054 7023 795 is valid (GR).", country="GR"
    ),
    ("iban_verification", "GR16 0110 1050 0000 1054 7023 796"): invalid(
        f"IBAN GR16 0110 1050 0000 1054 7023 796 is not valid: {CHECKSUM}."
    ),
    ("vat_verification", "DE 136,695 976"): valid("VAT number DE136695976 is valid.", country="DE"),
    ("vat_verification", "DE136695977"): invalid(
        f"VAT number DE136695977 is not valid: {CHECKSUM}."
    ),
    ("vat_verification", "ZZ1"): invalid(
        "VAT number ZZ1 is not valid: One of the parts of the number are invalid or unknown."
    ),
}


@pytest.mark.parametrize(("tool", "value"), list(STDNUM_CHECKS))
def test_python_stdnum_checks(tool: str, value: str) -> None:
    assert run(REGISTRY[tool].run, value) == STDNUM_CHECKS[tool, value]
