"""An uploaded address checked and reduced to the key leads are deduplicated by.

The key is the address lower-cased with its domain in IDNA ASCII (`Ada@Bücher.de` and
`ada@xn--bcher-kva.de` are one lead). The syntax check is email-validator's without DNS,
with its test environment on: the reference's own examples use `.test` and `.example`
domains, which must upload; `localhost`, `.local`, `.invalid`, `.onion` and `.arpa` can
never receive mail and fail.

email-validator takes ~50 µs an address, 200 ms for a 4,000-lead upload on its own. Most
addresses are plain ASCII, and for those a few string checks decide what it would; the
fast path only ever accepts (with the key email-validator gives), everything else goes to
email-validator, whose verdict and message stand (tests/leads/test_addresses.py checks the
two agree on generated addresses).
"""

from __future__ import annotations

import re

from email_validator import EmailNotValidError, validate_email

# email-validator's ASCII dot-atom local part (rfc_constants.DOT_ATOM_TEXT), then host-name
# labels of letters, digits and inner hyphens, at least two, the last (captured) ending
# in a letter, as every top-level domain does. "--" anywhere in the domain goes the slow
# way: labels like "xn--…" must be valid Punycode, which only the IDNA library can say.
_ATEXT = r"[a-zA-Z0-9_!#$%&'*+\-/=?^`{|}~]"
_ADDRESS = re.compile(
    rf"{_ATEXT}+(?:\.{_ATEXT}+)*@"
    r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+"
    r"((?:[a-zA-Z0-9][a-zA-Z0-9-]{0,61})?[a-zA-Z])"
)
_MAX_ADDRESS = 254  # email-validator's limit for an ASCII address
_MAX_DOMAIN = 253
# email-validator's special-use names, less `test` (its test environment allows it).
_SPECIAL_USE = frozenset({"arpa", "invalid", "local", "localhost", "onion"})


class MalformedAddress(ValueError):
    """Why an address cannot be a lead's: email-validator's message."""


def _fast_key(address: str) -> str | None:
    """The key of a plain ASCII address email-validator accepts, else None (undecided)."""
    if len(address) > _MAX_ADDRESS or not address.isascii():
        return None
    match = _ADDRESS.fullmatch(address)
    if match is None or match.group(1).lower() in _SPECIAL_USE:
        return None
    domain = address[address.index("@") + 1 :]
    if len(domain) > _MAX_DOMAIN or "--" in domain:
        return None
    # Lower-casing the whole address is lower-casing each part: "@" has no case.
    return address.lower()


def email_key(address: str) -> str:
    """The dedup key of `address` (already stripped), or MalformedAddress."""
    key = _fast_key(address)
    if key is not None:
        return key
    try:
        checked = validate_email(address, check_deliverability=False, test_environment=True)
    except EmailNotValidError as error:
        raise MalformedAddress(str(error)) from None
    return f"{checked.local_part}@{checked.ascii_domain}".lower()
