"""Syntax and normalisation, by email-validator (its DNS checks are off: DNS is `mx.py`'s)."""

from __future__ import annotations

from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email


@dataclass(frozen=True, slots=True)
class Address:
    normalized: str  # the domain lower-cased and in Unicode, the local part as given (NFC)
    local_part: str
    domain: str  # Unicode (bücher.example)
    ascii_domain: str  # IDNA (xn--bcher-kva.example): what DNS and SMTP are asked about
    # The address as SMTP sends it: the ASCII domain; a non-ASCII local part needs a server
    # that speaks SMTPUTF8.
    smtp_address: str
    needs_smtputf8: bool


class BadSyntax(ValueError):
    """Not an address: the message says why (email-validator's words)."""


# An address has at most 254 octets (RFC 5321's path limit less the brackets); longer text
# is refused before email-validator spends time on it.
MAX_LENGTH = 254


def parse(text: str) -> Address:
    """The address, normalised; BadSyntax if it is not one."""
    text = text.strip()
    if len(text) > MAX_LENGTH:
        raise BadSyntax(f"The email address is too long ({len(text)} characters).")
    try:
        # strict: a local part of at most 64 octets (RFC 5321), which servers may enforce.
        checked = validate_email(text, check_deliverability=False, strict=True)
    except EmailNotValidError as error:
        raise BadSyntax(str(error)) from None
    return Address(
        normalized=checked.normalized,
        local_part=checked.local_part,
        domain=checked.domain,
        ascii_domain=checked.ascii_domain,
        smtp_address=f"{checked.local_part}@{checked.ascii_domain}",
        needs_smtputf8=checked.smtputf8,
    )
