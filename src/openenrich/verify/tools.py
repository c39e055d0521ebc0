"""The tools a verification run can call: a registry, and the built-in checks.

A tool checks one kind of identifier and has a price in credits. Built-ins register the
same way a plugin would:

    @register("pan_verification", kind="pan", price="2.0", description="…")
    async def check_pan(value: str, env: ToolEnv) -> ToolResult: ...

The built-ins here work offline on the identifier itself (formats, checksums, numbering
plans), fetch a public web page, or ask our email verification engine (`email/`);
registry lookups against government or bureau data come with the verification-engine
work.
"""

from __future__ import annotations

import asyncio
import importlib
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from types import ModuleType
from typing import Any

import httpx
from stdnum import iban as stdnum_iban
from stdnum.us import ein as stdnum_ein

from openenrich.config import Settings
from openenrich.email.pool import SmtpPool
from openenrich.email.verdict import Mode, Verdict
from openenrich.email.verifier import EmailVerifier, Verification
from openenrich.enrichers import identifiers, phone
from openenrich.enrichers.identifiers import StdnumError
from openenrich.enrichers.mask import luhn
from openenrich.web.guard import UnsafeURL


@dataclass(frozen=True, slots=True)
class ToolResult:
    status: str  # success, failed or not_found
    summary: str  # one sentence for the run's answer
    output: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ToolEnv:
    """What tools may use, each taking what it needs: `http` is a shared client that
    reaches only what the SSRF guard allows (`web.client.guarded_client`); `settings` the
    server's; `smtp` the process's SMTP connections (`email.pool.SmtpPool`), shared with
    every other run and validation job so their limits hold for all of them."""

    http: httpx.AsyncClient
    settings: Settings
    smtp: SmtpPool


ToolFunction = Callable[[str, ToolEnv], Awaitable[ToolResult]]


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    kind: str  # the identifier kind it checks (see verify.identifiers)
    price: Decimal
    description: str
    run: ToolFunction


REGISTRY: dict[str, Tool] = {}


def register(
    name: str, *, kind: str, price: str, description: str
) -> Callable[[ToolFunction], ToolFunction]:
    def add(function: ToolFunction) -> ToolFunction:
        REGISTRY[name] = Tool(name, kind, Decimal(price), description, function)
        return function

    return add


def _reason(error: Exception) -> str:
    return str(error).strip().rstrip(".")


def ok(summary: str, **output: Any) -> ToolResult:
    return ToolResult("success", summary, output)


def bad(summary: str, **output: Any) -> ToolResult:
    return ToolResult("failed", summary, output)


def stdnum_check(
    validate: Callable[[str], str], label: str
) -> Callable[[Callable[[str], ToolResult]], ToolFunction]:
    """A check by a python-stdnum module: `validate` (the module's) gives the number in its
    compact form or raises stdnum's ValidationError, which fails the check as `"<label>
    <value> is not valid: <reason>."`. The decorated function answers for a valid number;
    what it raises from stdnum fails the check the same way.

        @register("iban_verification", kind="iban", price="1.0", description="…")
        @stdnum_check(identifiers.validator("iban"), "IBAN")
        def check_iban(iban: str) -> ToolResult: ...
    """

    def wrap(answer: Callable[[str], ToolResult]) -> ToolFunction:
        async def check(value: str, env: ToolEnv) -> ToolResult:
            try:
                return answer(validate(value))
            except StdnumError as error:
                return bad(f"{label} {value} is not valid: {_reason(error)}.", valid=False)

        check.__name__ = check.__qualname__ = answer.__name__
        check.__doc__ = answer.__doc__
        return check

    return wrap


# -- India ------------------------------------------------------------------------------

PAN_HOLDERS = {
    "P": "individual",
    "C": "company",
    "H": "Hindu undivided family",
    "F": "firm",
    "A": "association of persons",
    "T": "trust",
    "B": "body of individuals",
    "L": "local authority",
    "J": "artificial juridical person",
    "G": "government",
}


@register(
    "pan_verification", kind="pan", price="2.0", description="Indian PAN: format and holder type"
)
async def check_pan(value: str, env: ToolEnv) -> ToolResult:
    pan = value.upper()
    if not re.fullmatch(r"[A-Z]{5}\d{4}[A-Z]", pan):
        return bad(f"PAN {value} is not in the PAN format (AAAAA9999A).", valid_format=False)
    holder = PAN_HOLDERS.get(pan[3])
    summary = f"PAN {pan} is well formed" + (f" (holder: {holder})." if holder else ".")
    if holder is None:
        summary = f"PAN {pan} is well formed; its 4th letter '{pan[3]}' names no known holder type."
    return ok(summary, pan=pan, valid_format=True, holder_type=holder)


@register(
    "aadhaar_verification",
    kind="aadhaar",
    price="2.0",
    description="Aadhaar number: Verhoeff checksum",
)
@stdnum_check(identifiers.validator("aadhaar"), "Aadhaar")
def check_aadhaar(number: str) -> ToolResult:
    return ok(
        f"Aadhaar XXXX XXXX {number[-4:]} passes its checksum.", valid=True, last4=number[-4:]
    )


@register(
    "gstin_verification",
    kind="gstin",
    price="1.5",
    description="Indian GSTIN: checksum, state, PAN",
)
@stdnum_check(identifiers.validator("gstin"), "GSTIN")
def check_gstin(gstin: str) -> ToolResult:
    return ok(
        f"GSTIN {gstin} is valid (state code {gstin[:2]}, PAN {gstin[2:12]}).",
        valid=True,
        state_code=gstin[:2],
        pan=gstin[2:12],
    )


@register("uan_verification", kind="uan", price="1.5", description="Indian UAN (EPFO): format")
async def check_uan(value: str, env: ToolEnv) -> ToolResult:
    if not re.fullmatch(r"\d{12}", value):
        return bad(f"UAN {value} is not 12 digits.", valid=False)
    return ok(f"UAN ending {value[-4:]} is well formed.", valid=True)


RTO_STATES = {
    "AP": "Andhra Pradesh",
    "AR": "Arunachal Pradesh",
    "AS": "Assam",
    "BR": "Bihar",
    "CG": "Chhattisgarh",
    "DL": "Delhi",
    "GA": "Goa",
    "GJ": "Gujarat",
    "HR": "Haryana",
    "HP": "Himachal Pradesh",
    "JH": "Jharkhand",
    "JK": "Jammu and Kashmir",
    "KA": "Karnataka",
    "KL": "Kerala",
    "LA": "Ladakh",
    "MP": "Madhya Pradesh",
    "MH": "Maharashtra",
    "MN": "Manipur",
    "ML": "Meghalaya",
    "MZ": "Mizoram",
    "NL": "Nagaland",
    "OD": "Odisha",
    "PB": "Punjab",
    "PY": "Puducherry",
    "RJ": "Rajasthan",
    "SK": "Sikkim",
    "TN": "Tamil Nadu",
    "TS": "Telangana",
    "TR": "Tripura",
    "UK": "Uttarakhand",
    "UP": "Uttar Pradesh",
    "WB": "West Bengal",
    "AN": "Andaman and Nicobar",
    "CH": "Chandigarh",
    "DD": "Dadra, Nagar Haveli, Daman and Diu",
    "LD": "Lakshadweep",
}


@register(
    "vehicle_rc_verification",
    kind="vehicle_rc",
    price="1.5",
    description="Indian vehicle registration: format and state",
)
async def check_vehicle(value: str, env: ToolEnv) -> ToolResult:
    plate = re.sub(r"[\s-]", "", value.upper())
    match = re.fullmatch(r"([A-Z]{2})(\d{1,2})([A-Z]{1,3})(\d{4})", plate)
    if match is None or match.group(1) not in RTO_STATES:
        return bad(f"Registration {value} is not an Indian registration number.", valid=False)
    state = RTO_STATES[match.group(1)]
    return ok(
        f"Registration {plate} is well formed (registered in {state}, RTO {match.group(2)}).",
        valid=True,
        state=state,
        rto=match.group(2),
    )


# -- Anywhere -------------------------------------------------------------------------------


async def _phone_directories() -> tuple[ModuleType, ModuleType]:
    """phonenumbers' carrier and geocoder data. Loading it takes ~100 MiB and 0.4 s, so a
    server loads it at its first phone check, in a thread (the loop keeps running), rather
    than every server at start."""
    global _PHONE_DIRECTORIES
    if _PHONE_DIRECTORIES is None:
        _PHONE_DIRECTORIES = await asyncio.to_thread(
            lambda: (
                importlib.import_module("phonenumbers.carrier"),
                importlib.import_module("phonenumbers.geocoder"),
            )
        )
    return _PHONE_DIRECTORIES


_PHONE_DIRECTORIES: tuple[ModuleType, ModuleType] | None = None


@register(
    "mobile_verification",
    kind="phone",
    price="1.0",
    description="Phone number: numbering plan, line type, carrier",
)
async def check_phone(value: str, env: ToolEnv) -> ToolResult:
    # Parsing and classifying are the `phone` enricher's (enrichers/phone.py), shared.
    if phone.is_masked(value):
        return bad(f"Phone {value} is masked; it cannot be checked.", masked=True)
    try:
        number = phone.parse(value, "IN")
    except phone.ParseError as error:
        return bad(f"Phone {value} cannot be read: {_reason(error)}.", valid=False)
    if not phone.is_valid(number):
        return bad(f"Phone {value} is not a valid number.", valid=False)
    kind = phone.line_type(number)
    formatted = phone.e164(number)
    carrier, geocoder = await _phone_directories()
    operator = carrier.name_for_number(number, "en") or None
    region = geocoder.description_for_number(number, "en") or None
    return ok(
        f"Phone {formatted} is a valid {kind} number" + (f" ({operator})." if operator else "."),
        e164=formatted,
        line_type=kind,
        carrier=operator,
        region=region,
        country_code=number.country_code,
    )


@register(
    "email_verification",
    kind="email",
    price="0.5",
    description="Email address: syntax, mail servers, lists, SMTP probe if enabled",
)
async def check_email(value: str, env: ToolEnv) -> ToolResult:
    """The engine's verdict (docs/email-verification.md): the probe first and the heuristic
    where it cannot tell (hybrid) when the operator enabled the probe, else the heuristic
    (syntax, DNS, lists). One verifier per call: its DNS answers and catch-all tests are
    one run's, as a validation job's are."""
    mode = Mode.HYBRID if env.settings.email_probe_enabled else Mode.HEURISTIC
    async with EmailVerifier(env.settings, env.smtp) as verifier:
        verification = await verifier.verify(value, mode)
    return email_result(verification)


# A RISKY verdict's reasons: (the observation's key, how the summary names it).
EMAIL_RISKS = (
    ("catch_all", "a catch-all domain (its mail server accepts any address)"),
    ("disposable", "a disposable address"),
    ("role", "a role account"),
)


def email_result(verification: Verification) -> ToolResult:
    """A verdict as the check's result: INVALID fails, VALID and RISKY succeed (the risks
    named), UNKNOWN is not_found (unbilled: nothing was learned). The output is the
    engine's observations, and the risks."""
    v = verification
    observed = v.as_dict()
    risks = [key for key, _ in EMAIL_RISKS if observed[key]]
    output = {**observed, "risks": risks}
    address = v.parsed.normalized if v.parsed else v.address
    servers, smtp = v.servers, v.smtp
    if v.verdict is Verdict.INVALID:
        if v.parsed is None:
            why = f"is not valid: {(v.syntax_reason or 'bad syntax').strip().rstrip('.')}"
        elif servers is not None and not servers.found:
            why = f"has no mail domain: {servers.reason}"
        else:
            assert smtp is not None  # refused at RCPT TO: the rest is decided before
            reply = " ".join(str(part) for part in (smtp.code, smtp.message) if part)
            why = f"has no mailbox: its mail server {smtp.host} refused it ({reply})"
        return bad(f"Email {address} {why}.", **output)
    if v.verdict is Verdict.UNKNOWN:
        if servers is not None and not servers.found:
            reason = servers.reason or servers.status
        else:
            reason = (smtp.reason if smtp else None) or "the mail server would not say"
        return ToolResult("not_found", f"Email {address} could not be checked: {reason}.", output)
    if v.verdict is Verdict.RISKY:
        named = [words for key, words in EMAIL_RISKS if observed[key]]
        return ok(f"Email {address} is risky: {', '.join(named)}.", **output)
    if v.decided_by is Mode.PROBE:
        assert smtp is not None
        return ok(f"Email {address} is deliverable: {smtp.host} accepts the mailbox.", **output)
    # The heuristic's VALID: mail to the domain can be delivered; the mailbox is unconfirmed.
    assert servers is not None
    summary = f"Email {address} is at a domain that receives mail ({servers.hosts[0]})"
    if smtp is not None and smtp.status == "inconclusive":
        summary += f"; the SMTP probe could not confirm the mailbox ({smtp.reason or 'no answer'})"
    elif smtp is not None and smtp.status == "accepted":
        summary += "; its mail server accepts it, but may accept any address"
    return ok(summary + ".", **output)


@register(
    "ein_verification", kind="ein", price="1.0", description="US EIN: format and issuing campus"
)
@stdnum_check(identifiers.validator("ein"), "EIN")
def check_ein(ein: str) -> ToolResult:
    campus = stdnum_ein.get_campus(ein)  # an unknown prefix raises: not valid
    return ok(
        f"EIN {stdnum_ein.format(ein)} is valid (issued by {campus}).", valid=True, campus=campus
    )


@register(
    "iban_verification", kind="iban", price="1.0", description="IBAN: country format and checksum"
)
@stdnum_check(identifiers.validator("iban"), "IBAN")
def check_iban(iban: str) -> ToolResult:
    return ok(
        f"IBAN {stdnum_iban.format(iban)} is valid ({iban[:2]}).", valid=True, country=iban[:2]
    )


@register(
    "vat_verification",
    kind="vat",
    price="1.0",
    description="EU VAT number: country format and checksum",
)
@stdnum_check(identifiers.validator("vat"), "VAT number")
def check_vat(vat: str) -> ToolResult:
    return ok(f"VAT number {vat} is valid.", valid=True, country=vat[:2])


@register(
    "emirates_id_verification",
    kind="emirates_id",
    price="1.5",
    description="UAE Emirates ID: format and Luhn checksum",
)
async def check_emirates_id(value: str, env: ToolEnv) -> ToolResult:
    digits = re.sub(r"\D", "", value)
    if len(digits) != 15 or not digits.startswith("784"):
        return bad(f"Emirates ID {value} is not 15 digits starting with 784.", valid=False)
    if not luhn(digits):
        return bad(f"Emirates ID {value} fails its checksum.", valid=False)
    return ok(
        f"Emirates ID ending {digits[-4:]} is valid (born {digits[3:7]}).",
        valid=True,
        birth_year=digits[3:7],
    )


_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.I | re.S)


@register("website_check", kind="url", price="0.5", description="Website: reachable, status, title")
async def check_website(value: str, env: ToolEnv) -> ToolResult:
    started = time.perf_counter()
    try:
        async with env.http.stream(
            "GET", value, headers={"user-agent": "OpenEnrich/verify"}
        ) as response:
            head = b""
            async for chunk in response.aiter_bytes():
                head += chunk
                if len(head) > 65536:
                    break
    except (UnsafeURL, httpx.InvalidURL) as error:
        return ToolResult(
            "not_found",
            f"Website {value} cannot be checked: {_reason(error)}.",
            {"reachable": False},
        )
    except httpx.HTTPError as error:
        return bad(f"Website {value} did not answer: {type(error).__name__}.", reachable=False)
    elapsed = round((time.perf_counter() - started) * 1000)
    title_match = _TITLE.search(head)
    title = title_match.group(1).decode("utf-8", "replace").strip()[:200] if title_match else None
    output = {
        "reachable": True,
        "status": response.status_code,
        "title": title,
        "host": response.url.host,
        "response_ms": elapsed,
    }
    if response.status_code >= 400:
        return bad(f"Website {value} answered {response.status_code}.", **output)
    return ok(
        f"Website {value} is up ({response.status_code}" + (f", “{title}”)." if title else ")."),
        **output,
    )
