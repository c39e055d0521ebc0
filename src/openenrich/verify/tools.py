"""The tools a verification run can call: a registry, and the built-in checks.

A tool checks one kind of identifier and has a price in credits. Built-ins register the
same way a plugin would:

    @register("pan_verification", kind="pan", local=True, description="…")
    async def check_pan(value: str, env: ToolEnv) -> ToolResult: ...

A tool that is `local` neither waits on the network nor holds anything for long: it
works in-process on the value and what the server has loaded (a format, a checksum, the
sanctions list). A run calls it without a transaction of its own: it is run as soon as the
check before it answers and written with that check (verify/executor.py), one commit
fewer. A plugin's tool is not local unless it says so.

Prices are data, not code: the built-ins' are in `data/prices.json` (a plugin passes its
own, `price="1.0"`), and the operator's `OPENENRICH_VERIFY_PRICES` overrides any of them
(`price_of`).

The built-ins here work offline on the identifier itself (formats, checksums, numbering
plans, the bank directory bundled with schwifty), ask DNS, fetch a public web page, or ask
our email verification engine (`email/`). None of them reaches a government or bureau
registry, and their summaries say so where a reader could think otherwise ("only its
format was checked"); registry lookups come with the verification-engine work.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from importlib import resources
from types import ModuleType
from typing import Any

import dns.asyncresolver
import dns.exception
import dns.name
import dns.resolver
import httpx
import schwifty
from schwifty.exceptions import InvalidCountryCode, SchwiftyException
from stdnum import iban as stdnum_iban
from stdnum import lei as stdnum_lei
from stdnum.us import ein as stdnum_ein
from stdnum.us import ssn as stdnum_ssn

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
    every other run and validation job so their limits hold for all of them. `arguments`
    are the call's own beyond the value checked: what a cross-check compares the value
    with (`name_match`'s other name, `sanctions_screening`'s birth date)."""

    http: httpx.AsyncClient
    settings: Settings
    smtp: SmtpPool
    arguments: Mapping[str, str] = field(default_factory=dict)


ToolFunction = Callable[[str, ToolEnv], Awaitable[ToolResult]]


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    kind: str  # the identifier kind it checks (see verify.identifiers)
    price: Decimal
    description: str
    run: ToolFunction
    local: bool = False  # see the module's docstring


REGISTRY: dict[str, Tool] = {}


_PRICES: dict[str, str] = json.loads(
    (resources.files("openenrich.verify") / "data" / "prices.json").read_text()
)


def register(
    name: str, *, kind: str, description: str, price: str | None = None, local: bool = False
) -> Callable[[ToolFunction], ToolFunction]:
    """Add a tool to the registry; its price is `price`, else the built-ins' price list's."""
    listed = price if price is not None else _PRICES.get(name)
    if listed is None:
        raise ValueError(f"tool {name} has no price: pass price= or list it in prices.json")

    def add(function: ToolFunction) -> ToolFunction:
        REGISTRY[name] = Tool(name, kind, Decimal(listed), description, function, local)
        return function

    return add


def price_of(tool: Tool, settings: Settings) -> Decimal:
    """What a call of `tool` costs on this server."""
    return settings.verify_prices.get(tool.name, tool.price)


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

        @register("iban_verification", kind="iban", local=True, description="…")
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


ORDINALS = (
    "first",
    "second",
    "third",
    "fourth",
    "fifth",
    "sixth",
    "seventh",
    "eighth",
    "ninth",
    "tenth",
)
# A shape's characters: what each position must be, and how a summary names it.
SHAPE_CLASSES: dict[str, tuple[Callable[[str], bool], str]] = {
    "A": (str.isalpha, "a letter"),
    "9": (str.isdigit, "a digit"),
    "*": (str.isalnum, "a letter or digit"),
}


def ordinal(position: int) -> str:
    return ORDINALS[position - 1] if position <= len(ORDINALS) else f"{position}th"


def shape_error(code: str, shape: str) -> str | None:
    """What first keeps `code` from `shape` ("AAAAA9999A": A a letter, 9 a digit, * either),
    as a summary says it ("its sixth character 'X' is not a digit"); None if it fits."""
    if len(code) != len(shape):
        return f"it has {len(code)} characters, not {len(shape)}"
    for position, (char, wanted) in enumerate(zip(code, shape, strict=True), start=1):
        test, name = SHAPE_CLASSES[wanted]
        if not (char.isascii() and test(char)):
            return f"its {ordinal(position)} character '{char}' is not {name}"
    return None


def compact(value: str) -> str:
    """An identifier as it is checked: uppercase, without the spaces and hyphens people
    write in it."""
    return re.sub(r"[\s-]", "", value).upper()


# -- India ------------------------------------------------------------------------------

# The fourth character of a PAN: who holds it (the Income Tax Department's list).
PAN_HOLDERS = {
    "P": "person",
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
    "pan_verification", kind="pan", local=True, description="Indian PAN: format and holder type"
)
async def check_pan(value: str, env: ToolEnv) -> ToolResult:
    """Five letters, four digits, a letter: the fourth letter the holder type, the fifth the
    initial of a person's surname (of the name, for other holders), the digits a serial
    from 0001. The last letter is a check character by an algorithm the Income Tax
    Department does not publish, so it is not checked; nor is the PAN looked up."""
    pan = compact(value)
    reason = pan_error(pan)
    if reason is not None:
        return bad(f"PAN {pan} is not valid: {reason}.", pan=pan, valid_format=False)
    holder = PAN_HOLDERS[pan[3]]
    person = pan[3] == "P"
    initial = f"surname initial {pan[4]}" if person else f"name initial {pan[4]}"
    return ok(
        f"PAN {pan} is well formed (holder: {holder}, {initial}).",
        pan=pan,
        valid_format=True,
        holder_type=holder,
        # For a cross-check against the subject's name: a person's surname, else the name.
        surname_initial=pan[4] if person else None,
        name_initial=None if person else pan[4],
    )


def pan_error(pan: str) -> str | None:
    reason = shape_error(pan, "AAAAA9999A")
    if reason is None and pan[3] not in PAN_HOLDERS:
        reason = f"its fourth character '{pan[3]}' is not a holder type"
    if reason is None and pan[5:9] == "0000":
        reason = "its serial number is 0000, which is never issued"
    return reason


@register(
    "aadhaar_verification",
    kind="aadhaar",
    local=True,
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
    local=True,
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


@register("uan_verification", kind="uan", local=True, description="Indian UAN (EPFO): format")
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
    local=True,
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


@register(
    "epic_verification",
    kind="epic",
    local=True,
    description="Indian voter ID (EPIC): format only",
)
async def check_epic(value: str, env: ToolEnv) -> ToolResult:
    """An EPIC (Elector's Photo Identity Card) number as issued today: three letters and
    seven digits. Only the format is checked: the number has no check digit, and the
    electoral roll (the Election Commission's search) is not consulted. Old cards with a
    state's own format ("AP/01/001/000001") fail here."""
    epic = compact(value)
    reason = shape_error(epic, "AAA9999999")
    if reason is not None:
        return bad(f"EPIC {epic} is not valid: {reason}.", epic=epic, valid_format=False)
    return ok(
        f"EPIC {epic} is well formed (three letters, seven digits); only its format was "
        "checked, not the electoral roll.",
        epic=epic,
        valid_format=True,
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
    local=True,
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
    "ein_verification", kind="ein", local=True, description="US EIN: format and issuing campus"
)
@stdnum_check(identifiers.validator("ein"), "EIN")
def check_ein(ein: str) -> ToolResult:
    campus = stdnum_ein.get_campus(ein)  # an unknown prefix raises: not valid
    return ok(
        f"EIN {stdnum_ein.format(ein)} is valid (issued by {campus}).", valid=True, campus=campus
    )


@register(
    "ssn_format",
    kind="ssn",
    local=True,
    description="US SSN: format rules (area, group, serial)",
)
async def check_ssn(value: str, env: ToolEnv) -> ToolResult:
    """The numbering rules python-stdnum knows: nine digits (AAA-GG-SSSS) whose area is not
    000, 666 or 9xx, group not 00, serial not 0000, and not one of the numbers published
    in advertising. The SSA is not asked whether it was issued, or to whom. The number is
    never written whole: the summary and output carry its last four digits."""
    digits = compact(value)
    last4 = digits[-4:]
    reason = ssn_error(digits)
    if reason is not None:
        return bad(f"SSN XXX-XX-{last4} is not valid: {reason}.", valid=False, last4=last4)
    return ok(
        f"SSN XXX-XX-{last4} follows the SSN numbering rules (whether it was issued was not "
        "checked).",
        valid=True,
        last4=last4,
    )


def ssn_error(digits: str) -> str | None:
    if not re.fullmatch(r"\d{9}", digits):
        return "it is not nine digits (AAA-GG-SSSS)"
    try:
        stdnum_ssn.validate(digits)
    except StdnumError:
        pass
    else:
        return None
    # stdnum says only that a part is invalid: which one, for the summary.
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    if area in ("000", "666"):
        return f"its area number is {area}, which is never issued"
    if area.startswith("9"):
        return "its area number starts with 9, which is never issued for an SSN"
    if group == "00":
        return "its group number is 00, which is never issued"
    if serial == "0000":
        return "its serial number is 0000, which is never issued"
    return "it is a number published in advertising, void as an SSN"


@register(
    "iban_verification",
    kind="iban",
    local=True,
    description="IBAN: country format, checksum, bank and BIC",
)
@stdnum_check(identifiers.validator("iban"), "IBAN")
def check_iban(iban: str) -> ToolResult:
    """python-stdnum decides validity (its national checks); schwifty's bundled bank
    directory adds the bank and its BIC where it knows the country's bank codes."""
    bic, bank = iban_bank(iban)
    known = ", ".join(part for part in (iban[:2], bank, bic and f"BIC {bic}") if part)
    return ok(
        f"IBAN {stdnum_iban.format(iban)} is valid ({known}).",
        valid=True,
        country=iban[:2],
        bic=bic,
        bank_name=bank,
    )


def iban_bank(iban: str) -> tuple[str | None, str | None]:
    """(BIC, bank name) of a valid IBAN's bank code, each None when schwifty's directory
    does not list it (most countries outside Europe)."""
    try:
        account = schwifty.IBAN(iban, allow_invalid=True)  # stdnum has validated it
        bic = account.bic
        return (str(bic) if bic else None), account.bank_name
    except SchwiftyException:  # a country schwifty has no IBAN format for
        return None, None


@register(
    "bic_verification",
    kind="bic",
    local=True,
    description="SWIFT/BIC: format, country and bank name",
)
async def check_bic(value: str, env: ToolEnv) -> ToolResult:
    """ISO 9362: a four-character bank code (letters; digits since 2022), the ISO 3166
    country, a two-character location and an optional three-character branch (schwifty's
    rules). The bank's name comes from schwifty's bundled directory when it lists the
    code; SWIFT's own directory is not consulted, so an unlisted BIC is well formed, not
    known to exist."""
    code = re.sub(r"\s", "", value).upper()
    reason = bic_error(code)
    if reason is not None:
        return bad(f"BIC {code} is not valid: {reason}.", bic=code, valid=False)
    bic = schwifty.BIC(code)
    names = bic.bank_names
    country = str(bic.country.name) if bic.country else bic.country_code
    about = f"{country}, {names[0]}" if names else country
    if bic.type != "default":
        about += f"; a {bic.type} BIC"
    unlisted = "" if names else "; schwifty's bank directory does not list it"
    return ok(
        f"BIC {code} is well formed ({about}){unlisted}.",
        bic=code,
        valid=True,
        bank_code=bic.bank_code,
        country_code=bic.country_code,
        country=country,
        location_code=bic.location_code,
        branch_code=bic.branch_code or None,
        bic_type=bic.type,  # default, testing, passive or reverse billing (its location)
        bank_name=names[0] if names else None,
    )


def bic_error(code: str) -> str | None:
    if len(code) not in (8, 11):
        return f"it has {len(code)} characters, not 8 or 11"
    reason = shape_error(code, "****AA**" + "***"[: len(code) - 8])
    if reason is not None:
        return reason
    try:
        schwifty.BIC(code)
    except InvalidCountryCode:
        return f"its country code '{code[4:6]}' is not an ISO 3166 country"
    except SchwiftyException as error:
        return _reason(error)
    return None


@register(
    "lei_verification",
    kind="lei",
    local=True,
    description="LEI (ISO 17442): format and check digits",
)
async def check_lei(value: str, env: ToolEnv) -> ToolResult:
    """Twenty characters, the last two check digits (ISO 7064 MOD 97-10, python-stdnum).
    The GLEIF registry is not consulted: a valid LEI is well formed, not known to be
    issued or current."""
    lei = compact(value)
    reason = shape_error(lei, "*" * 18 + "99")
    if reason is None:
        try:
            stdnum_lei.validate(lei)
        except StdnumError:
            reason = f"its check digits {lei[-2:]} do not match the rest (ISO 7064 MOD 97-10)"
    if reason is not None:
        return bad(f"LEI {lei} is not valid: {reason}.", lei=lei, valid=False)
    return ok(
        f"LEI {lei} is valid: its check digits match (its registration was not looked up).",
        lei=lei,
        valid=True,
        issuer_prefix=lei[:4],  # the issuing organisation's (LOU's) prefix
    )


@register(
    "vat_verification",
    kind="vat",
    local=True,
    description="EU VAT number: country format and checksum",
)
@stdnum_check(identifiers.validator("vat"), "VAT number")
def check_vat(vat: str) -> ToolResult:
    return ok(f"VAT number {vat} is valid.", valid=True, country=vat[:2])


@register(
    "emirates_id_verification",
    kind="emirates_id",
    local=True,
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


@dataclass(frozen=True, slots=True)
class Page:
    status: int
    title: str | None
    host: str
    response_ms: int


async def fetch_page(http: httpx.AsyncClient, url: str) -> Page:
    """A GET of `url` through the guarded client: its status, and its title from the first
    64 KiB. Raises UnsafeURL or httpx.InvalidURL when it may not be fetched, another
    httpx.HTTPError when it does not answer."""
    started = time.perf_counter()
    async with http.stream("GET", url, headers={"user-agent": "OpenEnrich/verify"}) as response:
        head = b""
        async for chunk in response.aiter_bytes():
            head += chunk
            if len(head) > 65536:
                break
    elapsed = round((time.perf_counter() - started) * 1000)
    title_match = _TITLE.search(head)
    title = title_match.group(1).decode("utf-8", "replace").strip()[:200] if title_match else None
    return Page(response.status_code, title, response.url.host, elapsed)


@register("website_check", kind="url", description="Website: reachable, status, title")
async def check_website(value: str, env: ToolEnv) -> ToolResult:
    try:
        page = await fetch_page(env.http, value)
    except (UnsafeURL, httpx.InvalidURL) as error:
        return ToolResult(
            "not_found",
            f"Website {value} cannot be checked: {_reason(error)}.",
            {"reachable": False},
        )
    except httpx.HTTPError as error:
        return bad(f"Website {value} did not answer: {type(error).__name__}.", reachable=False)
    output = {
        "reachable": True,
        "status": page.status,
        "title": page.title,
        "host": page.host,
        "response_ms": page.response_ms,
    }
    if page.status >= 400:
        return bad(f"Website {value} answered {page.status}.", **output)
    return ok(
        f"Website {value} is up ({page.status}" + (f", “{page.title}”)." if page.title else ")."),
        **output,
    )


@register(
    "domain_check",
    kind="domain",
    description="Domain: DNS (address, MX, SPF, DMARC) and homepage",
)
async def check_domain(value: str, env: ToolEnv) -> ToolResult:
    """Whether the domain exists, and what it publishes: its addresses (A, AAAA), mail
    servers (MX), SPF (a TXT record "v=spf1 …") and DMARC policy (TXT at _dmarc.<domain>,
    the domain as given: no fallback to its organisational domain); then its homepage,
    https and else http, through the guarded client (`env.http`), when it has an address.

    DNS is asked as email verification asks it, at OPENENRICH_EMAIL_DNS_NAMESERVERS (the
    system's otherwise), port and time limit included: one setting points all of the
    server's DNS somewhere, and tests at a local server. A domain that does not exist
    (NXDOMAIN) fails; when a lookup gets no answer (a timeout, SERVFAIL from every
    nameserver, an unreachable network) nothing is concluded: not_found, unbilled."""
    try:
        domain = domain_name(value)
    except ValueError as error:
        return bad(
            f"Domain {value} is not a domain name: {_reason(error)}.", domain=value, exists=False
        )
    resolver = dns_resolver(env.settings)
    lookups = await asyncio.gather(
        *(_ask(resolver, name, kind) for name, kind in dns_questions(domain))
    )
    address, address6, mail, text, dmarc = lookups
    if address.nxdomain:
        return bad(f"Domain {domain} does not exist (NXDOMAIN).", domain=domain, exists=False)
    failure = next((lookup.error for lookup in lookups if lookup.error), None)
    if failure is not None:
        return ToolResult(
            "not_found", f"Domain {domain} could not be checked: {failure}.", {"domain": domain}
        )
    output: dict[str, Any] = {
        "domain": domain,
        "exists": True,
        "addresses": [str(record) for record in (*address.records, *address6.records)],
        **mail_records(mail.records),
        "spf": first_text(text.records, "v=spf1"),
        **dmarc_record(dmarc.records),
    }
    output["homepage"] = (
        await homepage(env.http, domain)
        if output["addresses"]
        else {"url": None, "reachable": False, "reason": "the domain has no address"}
    )
    return ok(domain_summary(output), **output)


_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


def domain_name(value: str) -> str:
    """`value` as an ASCII domain name (IDNA for a Unicode one), lowercase, without a final
    dot; ValueError saying what keeps it from being one."""
    name = value.strip().rstrip(".").lower()
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError:
            raise ValueError("it cannot be written in ASCII (IDNA)") from None
    labels = name.split(".")
    if len(labels) < 2:
        raise ValueError("a domain has at least two labels (example.com)")
    if len(name) > 253:
        raise ValueError("it is longer than 253 characters")
    for label in labels:
        if not _LABEL.fullmatch(label):
            raise ValueError(f"its label '{label}' is not 1-63 letters, digits or hyphens")
    if labels[-1].isdigit():
        raise ValueError("it is an IP address, not a domain")
    return name


def dns_questions(domain: str) -> list[tuple[str, str]]:
    return [
        (domain, "A"),
        (domain, "AAAA"),
        (domain, "MX"),
        (domain, "TXT"),
        (f"_dmarc.{domain}", "TXT"),
    ]


def dns_resolver(settings: Settings) -> dns.asyncresolver.Resolver:
    """A resolver as email verification's (email/mx.py): the configured nameservers, port
    and time limit, the system's nameservers when none are configured."""
    nameservers = settings.email_dns_nameservers
    try:
        resolver = dns.asyncresolver.Resolver(configure=not nameservers)
    except dns.resolver.NoResolverConfiguration:
        # No /etc/resolv.conf: every lookup then fails (not_found) rather than the check.
        resolver = dns.asyncresolver.Resolver(configure=False)
    if nameservers:
        resolver.nameservers = list(nameservers)  # addresses: the settings checked them
        resolver.port = settings.email_dns_port
    resolver.lifetime = resolver.timeout = settings.email_dns_timeout_seconds
    return resolver


@dataclass(frozen=True, slots=True)
class _Lookup:
    records: tuple[Any, ...] = ()  # none of that kind: the name exists without them
    nxdomain: bool = False
    error: str | None = None  # no answer to conclude from


async def _ask(resolver: dns.asyncresolver.Resolver, name: str, kind: str) -> _Lookup:
    try:
        answer = await resolver.resolve(dns.name.from_text(name), kind, raise_on_no_answer=False)
    except dns.resolver.NXDOMAIN:
        return _Lookup(nxdomain=True)
    except dns.exception.Timeout:
        return _Lookup(error=f"no DNS answer for {name} {kind} in time")
    except (dns.exception.DNSException, OSError, ValueError) as error:
        # SERVFAIL or REFUSED from every nameserver, a malformed answer, no nameserver
        # configured, a network that cannot reach it.
        return _Lookup(error=f"{name} {kind}: {_reason(error)}"[:300])
    return _Lookup(tuple(answer.rrset or ()))


def mail_records(records: tuple[Any, ...]) -> dict[str, Any]:
    """The MX hosts, most preferred first; a null MX ("0 .", RFC 7505) says the domain
    takes no mail."""
    ordered = sorted((record.preference, record.exchange) for record in records)
    hosts = [
        exchange.to_text(omit_final_dot=True).lower()
        for _, exchange in ordered
        if exchange != dns.name.root
    ]
    return {"mx": list(dict.fromkeys(hosts)), "null_mx": bool(ordered) and not hosts}


def first_text(records: tuple[Any, ...], tag: str) -> str | None:
    """The first TXT record that starts with `tag` (v=spf1, v=DMARC1), its strings joined
    (a record longer than 255 bytes comes in several)."""
    for record in records:
        text = b"".join(record.strings).decode("utf-8", "replace")
        if re.match(rf"(?i){re.escape(tag)}(?:$|[\s;])", text):
            return text
    return None


def dmarc_record(records: tuple[Any, ...]) -> dict[str, Any]:
    record = first_text(records, "v=DMARC1")
    policy = re.search(r"(?i)(?:^|;)\s*p\s*=\s*(\w+)", record) if record else None
    return {"dmarc": record, "dmarc_policy": policy.group(1).lower() if policy else None}


async def homepage(http: httpx.AsyncClient, domain: str) -> dict[str, Any]:
    """The homepage at https, else at http; a site that answers with an error status did
    answer (no second try)."""
    failures: list[str] = []
    for scheme in ("https", "http"):
        url = f"{scheme}://{domain}/"
        try:
            page = await fetch_page(http, url)
        except (UnsafeURL, httpx.InvalidURL) as error:
            failures.append(f"{scheme}: {_reason(error)}")
        except httpx.HTTPError as error:
            failures.append(f"{scheme}: {type(error).__name__}")
        else:
            return {
                "url": url,
                "reachable": True,
                "status": page.status,
                "title": page.title,
                "response_ms": page.response_ms,
            }
    return {"url": None, "reachable": False, "reason": "; ".join(failures)}


def domain_summary(output: dict[str, Any]) -> str:
    addresses, mx = output["addresses"], output["mx"]
    facts = [
        f"address {addresses[0]}" if addresses else "no address",
        f"mail at {mx[0]}" if mx else ("a null MX (no mail)" if output["null_mx"] else "no MX"),
        "SPF" if output["spf"] else "no SPF",
        f"DMARC (p={output['dmarc_policy']})" if output["dmarc"] else "no DMARC",
    ]
    page = output["homepage"]
    if page["reachable"]:
        title = f" (“{page['title']}”)" if page["title"] else ""
        site = f"its homepage {page['url']} answered {page['status']}{title}"
    elif addresses:
        site = f"its homepage could not be fetched ({page['reason']})"
    else:
        site = "no homepage"
    return f"Domain {output['domain']} exists: {', '.join(facts)}; {site}."


# The cross-checks register here too, so that every tool is in REGISTRY once this module
# is imported (they import `register` from it, hence last).
from openenrich.verify import cross_checks as _cross_checks  # noqa: E402, F401
