"""From what was seen to a verdict, under each mode.

    INVALID  bad syntax, no mail domain (NXDOMAIN, null MX, no MX and no address), or
             the mail server refused the address (5xx other than a 5.7.x policy refusal)
    RISKY    a catch-all domain, a disposable domain, a role account (unless INVALID)
    UNKNOWN  nothing decisive: DNS failed or timed out, the probe was inconclusive (4xx,
             timeouts, policy refusals, unreachable servers) or did not run, or the
             address was accepted where the catch-all test could not tell
    VALID    probe: accepted, and the domain is not catch-all;
             heuristic: the domain has mail servers and no list says RISKY

`probe` is the reference's BOUNCEBAN, `heuristic` its MAILVERI (no SMTP), `hybrid` the
probe first and the heuristic where the probe says UNKNOWN. A free-mail domain is noted,
never a reason for a verdict.
"""

from __future__ import annotations

from enum import StrEnum

from openenrich.email.mx import MailServers
from openenrich.email.probe import SmtpResult


class Verdict(StrEnum):
    VALID = "VALID"
    INVALID = "INVALID"
    RISKY = "RISKY"
    UNKNOWN = "UNKNOWN"


class Mode(StrEnum):
    PROBE = "probe"
    HEURISTIC = "heuristic"
    HYBRID = "hybrid"


def by_probe(
    servers: MailServers, smtp: SmtpResult, catch_all: bool | None, listed: bool
) -> Verdict:
    """`listed`: a list says disposable or role."""
    if servers.status in ("null_mx", "no_mail_domain") or smtp.status == "refused":
        return Verdict.INVALID
    if listed or catch_all:
        return Verdict.RISKY
    if smtp.status == "accepted" and catch_all is False:
        return Verdict.VALID
    return Verdict.UNKNOWN


def by_heuristic(servers: MailServers, listed: bool) -> Verdict:
    if servers.status in ("null_mx", "no_mail_domain"):
        return Verdict.INVALID
    if listed:
        return Verdict.RISKY
    return Verdict.VALID if servers.found else Verdict.UNKNOWN
