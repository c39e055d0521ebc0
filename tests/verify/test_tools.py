"""Built-in checks called directly, for what the reference's examples do not reach."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Iterator

import httpx
import pytest

from fixtures.mail import DnsServer, Zone
from helpers.http import LocalServer, Received, Reply
from openenrich.config import Settings
from openenrich.email.pool import SmtpPool
from openenrich.verify.tools import REGISTRY, ToolEnv, ToolFunction, ToolResult, check_phone
from openenrich.web.client import guarded_client


def run(
    tool: ToolFunction,
    value: str,
    settings: Settings | None = None,
    http: Callable[[], httpx.AsyncClient] = httpx.AsyncClient,
) -> ToolResult:
    """One check, with what a worker gives it: settings, an HTTP client, the SMTP pool."""

    async def work() -> ToolResult:
        configured = settings or Settings()
        async with http() as client:
            pool = SmtpPool.from_settings(configured)
            return await tool(value, ToolEnv(client, configured, pool))

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
    """The identifier checks of verify/tools.py (the cross-checks are pinned with theirs)."""
    tools = {
        name: f"{tool.kind} {tool.price} {tool.description}"
        for name, tool in REGISTRY.items()
        if tool.run.__module__ == "openenrich.verify.tools"
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
        "iban_verification": "iban 1.0 IBAN: country format, checksum, bank and BIC",
        "vat_verification": "vat 1.0 EU VAT number: country format and checksum",
        "emirates_id_verification": "emirates_id 1.5 UAE Emirates ID: format and Luhn checksum",
        "website_check": "url 0.5 Website: reachable, status, title",
        "epic_verification": "epic 1.5 Indian voter ID (EPIC): format only",
        "ssn_format": "ssn 1.0 US SSN: format rules (area, group, serial)",
        "bic_verification": "bic 1.0 SWIFT/BIC: format, country and bank name",
        "lei_verification": "lei 1.0 LEI (ISO 17442): format and check digits",
        "domain_check": "domain 1.0 Domain: DNS (address, MX, SPF, DMARC) and homepage",
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
        "IBAN GR16 0110 1050 0000 1054 7023 795 is valid "
        "(GR, NATIONAL BANK OF GREECE S.A., BIC ETHNGRAA).",
        country="GR",
        bic="ETHNGRAA",
        bank_name="NATIONAL BANK OF GREECE S.A.",
    ),
    ("iban_verification", "DE89 3704 0044 0532 0130 00"): valid(
        "IBAN DE89 3704 0044 0532 0130 00 is valid (DE, Commerzbank, BIC COBADEFFXXX).",
        country="DE",
        bic="COBADEFFXXX",
        bank_name="Commerzbank",
    ),
    # Valid, at a bank schwifty's directory does not list (Saudi Arabia's).
    ("iban_verification", "SA03 8000 0000 6080 1016 7519"): valid(
        "IBAN SA03 8000 0000 6080 1016 7519 is valid (SA).",
        country="SA",
        bic=None,
        bank_name=None,
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


def failed(summary: str, **output: object) -> ToolResult:
    return ToolResult("failed", summary, output)


def success(summary: str, **output: object) -> ToolResult:
    return ToolResult("success", summary, output)


def pan(value: str) -> dict[str, object]:
    return {"pan": value, "valid_format": False}


# The offline checks, valid and not, each invalid one with its exact reason.
OFFLINE_CHECKS = {
    ("pan_verification", "AAAPZ1234C"): success(
        "PAN AAAPZ1234C is well formed (holder: person, surname initial Z).",
        pan="AAAPZ1234C",
        valid_format=True,
        holder_type="person",
        surname_initial="Z",
        name_initial=None,
    ),
    ("pan_verification", "aapfu 0939f"): success(
        "PAN AAPFU0939F is well formed (holder: firm, name initial U).",
        pan="AAPFU0939F",
        valid_format=True,
        holder_type="firm",
        surname_initial=None,
        name_initial="U",
    ),
    ("pan_verification", "ABCDE1234F"): failed(
        "PAN ABCDE1234F is not valid: its fourth character 'D' is not a holder type.",
        **pan("ABCDE1234F"),
    ),
    ("pan_verification", "ABCP1234F"): failed(
        "PAN ABCP1234F is not valid: it has 9 characters, not 10.", **pan("ABCP1234F")
    ),
    ("pan_verification", "1AAPZ1234C"): failed(
        "PAN 1AAPZ1234C is not valid: its first character '1' is not a letter.",
        **pan("1AAPZ1234C"),
    ),
    ("pan_verification", "AAAPZ12X4C"): failed(
        "PAN AAAPZ12X4C is not valid: its eighth character 'X' is not a digit.",
        **pan("AAAPZ12X4C"),
    ),
    ("pan_verification", "AAAPZ12345"): failed(
        "PAN AAAPZ12345 is not valid: its tenth character '5' is not a letter.",
        **pan("AAAPZ12345"),
    ),
    ("pan_verification", "AAAPZ0000C"): failed(
        "PAN AAAPZ0000C is not valid: its serial number is 0000, which is never issued.",
        **pan("AAAPZ0000C"),
    ),
    ("epic_verification", "ABC1234567"): success(
        "EPIC ABC1234567 is well formed (three letters, seven digits); only its format was "
        "checked, not the electoral roll.",
        epic="ABC1234567",
        valid_format=True,
    ),
    ("epic_verification", "AB12345678"): failed(
        "EPIC AB12345678 is not valid: its third character '1' is not a letter.",
        epic="AB12345678",
        valid_format=False,
    ),
    ("epic_verification", "ABC123456"): failed(
        "EPIC ABC123456 is not valid: it has 9 characters, not 10.",
        epic="ABC123456",
        valid_format=False,
    ),
    ("lei_verification", "529900T8BM49AURSDO55"): success(
        "LEI 529900T8BM49AURSDO55 is valid: its check digits match (its registration was not "
        "looked up).",
        lei="529900T8BM49AURSDO55",
        valid=True,
        issuer_prefix="5299",
    ),
    ("lei_verification", "HWUPKR0MPOU8FGXBT394"): success(  # Apple Inc.
        "LEI HWUPKR0MPOU8FGXBT394 is valid: its check digits match (its registration was not "
        "looked up).",
        lei="HWUPKR0MPOU8FGXBT394",
        valid=True,
        issuer_prefix="HWUP",
    ),
    ("lei_verification", "529900T8BM49AURSDO56"): failed(
        "LEI 529900T8BM49AURSDO56 is not valid: its check digits 56 do not match the rest "
        "(ISO 7064 MOD 97-10).",
        lei="529900T8BM49AURSDO56",
        valid=False,
    ),
    ("lei_verification", "529900T8BM49AURSDOX5"): failed(
        "LEI 529900T8BM49AURSDOX5 is not valid: its 19th character 'X' is not a digit.",
        lei="529900T8BM49AURSDOX5",
        valid=False,
    ),
    ("lei_verification", "529900T8BM49AURSD"): failed(
        "LEI 529900T8BM49AURSD is not valid: it has 17 characters, not 20.",
        lei="529900T8BM49AURSD",
        valid=False,
    ),
    ("bic_verification", "DEUTDEFF"): success(
        "BIC DEUTDEFF is well formed (Germany, Deutsche Bank).",
        bic="DEUTDEFF",
        valid=True,
        bank_code="DEUT",
        country_code="DE",
        country="Germany",
        location_code="FF",
        branch_code=None,
        bic_type="default",
        bank_name="Deutsche Bank",
    ),
    ("bic_verification", "MARK DE F1 100"): success(
        "BIC MARKDEF1100 is well formed (Germany, Bundesbank; a passive BIC).",
        bic="MARKDEF1100",
        valid=True,
        bank_code="MARK",
        country_code="DE",
        country="Germany",
        location_code="F1",
        branch_code="100",
        bic_type="passive",
        bank_name="Bundesbank",
    ),
    ("bic_verification", "ABCDUS33"): success(
        "BIC ABCDUS33 is well formed (United States); schwifty's bank directory does not list it.",
        bic="ABCDUS33",
        valid=True,
        bank_code="ABCD",
        country_code="US",
        country="United States",
        location_code="33",
        branch_code=None,
        bic_type="default",
        bank_name=None,
    ),
    ("bic_verification", "DEUTXXFF"): failed(
        "BIC DEUTXXFF is not valid: its country code 'XX' is not an ISO 3166 country.",
        bic="DEUTXXFF",
        valid=False,
    ),
    ("bic_verification", "DEUT1EFF"): failed(
        "BIC DEUT1EFF is not valid: its fifth character '1' is not a letter.",
        bic="DEUT1EFF",
        valid=False,
    ),
    ("bic_verification", "DEUTDEF"): failed(
        "BIC DEUTDEF is not valid: it has 7 characters, not 8 or 11.", bic="DEUTDEF", valid=False
    ),
    # Never written whole: the last four digits only.
    ("ssn_format", "536-90-4399"): success(
        "SSN XXX-XX-4399 follows the SSN numbering rules (whether it was issued was not checked).",
        valid=True,
        last4="4399",
    ),
    # The Woolworth wallet-insert number: python-stdnum lists it as void.
    ("ssn_format", "078-05-1120"): failed(
        "SSN XXX-XX-1120 is not valid: it is a number published in advertising, void as an SSN.",
        valid=False,
        last4="1120",
    ),
    ("ssn_format", "000-12-3456"): failed(
        "SSN XXX-XX-3456 is not valid: its area number is 000, which is never issued.",
        valid=False,
        last4="3456",
    ),
    ("ssn_format", "666123456"): failed(
        "SSN XXX-XX-3456 is not valid: its area number is 666, which is never issued.",
        valid=False,
        last4="3456",
    ),
    ("ssn_format", "912-34-5678"): failed(
        "SSN XXX-XX-5678 is not valid: its area number starts with 9, which is never issued "
        "for an SSN.",
        valid=False,
        last4="5678",
    ),
    ("ssn_format", "123-00-4567"): failed(
        "SSN XXX-XX-4567 is not valid: its group number is 00, which is never issued.",
        valid=False,
        last4="4567",
    ),
    ("ssn_format", "123-45-0000"): failed(
        "SSN XXX-XX-0000 is not valid: its serial number is 0000, which is never issued.",
        valid=False,
        last4="0000",
    ),
    ("ssn_format", "12-345"): failed(
        "SSN XXX-XX-2345 is not valid: it is not nine digits (AAA-GG-SSSS).",
        valid=False,
        last4="2345",
    ),
}


@pytest.mark.parametrize(("tool", "value"), list(OFFLINE_CHECKS))
def test_offline_checks(tool: str, value: str) -> None:
    assert run(REGISTRY[tool].run, value) == OFFLINE_CHECKS[tool, value]


# -- domain_check: DNS at a server on loopback, the homepage at a web server on loopback ------

DOMAINS = [
    "acme.example. 60 IN A 127.0.0.1",
    "acme.example. 60 IN MX 20 mx2.acme.example.",
    "acme.example. 60 IN MX 10 mx1.acme.example.",
    'acme.example. 60 IN TXT "google-site-verification=abc"',
    'acme.example. 60 IN TXT "v=spf1 mx -all"',
    '_dmarc.acme.example. 60 IN TXT "v=DMARC1; p=reject; rua=mailto:dmarc@acme.example"',
    'parked.example. 60 IN TXT "v=spf1 -all"',
    "parked.example. 60 IN MX 0 .",
    '_dmarc.parked.example. 60 IN TXT "v=DMARC1;p=quarantine"',
    "guarded.invalid. 60 IN A 127.0.0.1",
]
HOMEPAGE = b"<html><head><title>Acme Robotics</title></head><body>Hi</body></html>"


@pytest.fixture
def dns() -> Iterator[DnsServer]:
    zone = Zone(DOMAINS, servfail=["servfail.example"], silent=["silent.example"])
    with DnsServer(zone) as server:
        yield server


@pytest.fixture
def web() -> Iterator[LocalServer]:
    def page(number: int, received: Received) -> Reply:
        return Reply(body=HOMEPAGE, headers={"content-type": "text/html"})

    with LocalServer(page) as server:
        yield server


def dns_at(port: int) -> Settings:
    return Settings(
        email_dns_nameservers=["127.0.0.1"], email_dns_port=port, email_dns_timeout_seconds=0.5
    )


def through(web: LocalServer) -> Callable[[], httpx.AsyncClient]:
    """A client whose every request goes through `web` as its proxy: an http request for
    any host reaches `web`, as the domain's site would be reached; an https one asks it to
    CONNECT, which it refuses (501), as a site without https would fail."""
    return lambda: httpx.AsyncClient(proxy=f"http://127.0.0.1:{web.port}", timeout=5)


def domain(value: str, settings: Settings, http: Callable[[], httpx.AsyncClient]) -> ToolResult:
    return run(REGISTRY["domain_check"].run, value, settings, http)


def test_a_domain_its_mail_records_and_its_homepage(dns: DnsServer, web: LocalServer) -> None:
    result = domain("Acme.Example.", dns_at(dns.port), through(web))
    assert result.status == "success", result
    assert isinstance(result.output["homepage"].pop("response_ms"), int)
    assert result.output == {
        "domain": "acme.example",
        "exists": True,
        "addresses": ["127.0.0.1"],
        "mx": ["mx1.acme.example", "mx2.acme.example"],
        "null_mx": False,
        "spf": "v=spf1 mx -all",
        "dmarc": "v=DMARC1; p=reject; rua=mailto:dmarc@acme.example",
        "dmarc_policy": "reject",
        # https failed (no TLS there): http answered.
        "homepage": {
            "url": "http://acme.example/",
            "reachable": True,
            "status": 200,
            "title": "Acme Robotics",
        },
    }
    assert result.summary == (
        "Domain acme.example exists: address 127.0.0.1, mail at mx1.acme.example, SPF, "
        "DMARC (p=reject); its homepage http://acme.example/ answered 200 (“Acme Robotics”)."
    )
    assert [(r.method, r.path, r.headers["host"]) for r in web.received] == [
        ("GET", "http://acme.example/", "acme.example")
    ]


def test_a_domain_without_an_address_has_no_homepage_to_fetch(
    dns: DnsServer, web: LocalServer
) -> None:
    result = domain("parked.example", dns_at(dns.port), through(web))
    assert result == success(
        "Domain parked.example exists: no address, a null MX (no mail), SPF, "
        "DMARC (p=quarantine); no homepage.",
        domain="parked.example",
        exists=True,
        addresses=[],
        mx=[],
        null_mx=True,
        spf="v=spf1 -all",
        dmarc="v=DMARC1;p=quarantine",
        dmarc_policy="quarantine",
        homepage={"url": None, "reachable": False, "reason": "the domain has no address"},
    )
    assert web.received == []


def test_the_homepage_is_fetched_through_the_guard(dns: DnsServer) -> None:
    """The guarded client resolves the site's name itself (the system's DNS, where this
    name does not exist) and refuses it: the domain is checked, its homepage not."""

    def guarded() -> httpx.AsyncClient:
        return guarded_client(allow_private=False, https_only=False, timeout=5)

    result = domain("guarded.invalid", dns_at(dns.port), guarded)
    assert result.status == "success", result
    reason = (
        "https: the host guarded.invalid does not resolve; "
        "http: the host guarded.invalid does not resolve"
    )
    assert result.output["homepage"] == {"url": None, "reachable": False, "reason": reason}
    assert result.summary == (
        "Domain guarded.invalid exists: address 127.0.0.1, no MX, no SPF, no DMARC; "
        f"its homepage could not be fetched ({reason})."
    )


@pytest.fixture
def mute_nameserver() -> Iterator[int]:
    """A UDP port that takes DNS questions and never answers them."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            "nowhere.example",
            failed(
                "Domain nowhere.example does not exist (NXDOMAIN).",
                domain="nowhere.example",
                exists=False,
            ),
        ),
        (
            "localhost",
            failed(
                "Domain localhost is not a domain name: a domain has at least two labels "
                "(example.com).",
                domain="localhost",
                exists=False,
            ),
        ),
        (
            "exa mple.com",
            failed(
                "Domain exa mple.com is not a domain name: its label 'exa mple' is not 1-63 "
                "letters, digits or hyphens.",
                domain="exa mple.com",
                exists=False,
            ),
        ),
        (
            "10.0.0.1",
            failed(
                "Domain 10.0.0.1 is not a domain name: it is an IP address, not a domain.",
                domain="10.0.0.1",
                exists=False,
            ),
        ),
    ],
)
def test_domains_that_are_not(
    dns: DnsServer, web: LocalServer, value: str, expected: ToolResult
) -> None:
    assert domain(value, dns_at(dns.port), through(web)) == expected
    assert web.received == []


def test_without_a_dns_answer_nothing_is_concluded(
    dns: DnsServer, web: LocalServer, mute_nameserver: int
) -> None:
    """not_found (unbilled), with the reason: a nameserver that fails, one that never
    answers the name, one that never answers at all."""
    failing = domain("servfail.example", dns_at(dns.port), through(web))
    assert failing.status == "not_found"
    assert failing.summary.startswith(
        "Domain servfail.example could not be checked: servfail.example A: "
    )
    assert "SERVFAIL" in failing.summary
    assert failing.output == {"domain": "servfail.example"}
    assert domain("silent.example", dns_at(dns.port), through(web)) == ToolResult(
        "not_found",
        "Domain silent.example could not be checked: no DNS answer for silent.example A in time.",
        {"domain": "silent.example"},
    )
    assert domain("acme.example", dns_at(mute_nameserver), through(web)) == ToolResult(
        "not_found",
        "Domain acme.example could not be checked: no DNS answer for acme.example A in time.",
        {"domain": "acme.example"},
    )
    assert web.received == []
