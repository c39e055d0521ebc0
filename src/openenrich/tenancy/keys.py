"""The API key format: `sk_live_` or `sk_test_`, then 40 random base-62 characters."""

from __future__ import annotations

import hashlib
import re
import secrets
import string

from openenrich.tenancy.roles import Environment

SECRET_LENGTH = 40
DISPLAY_PREFIX_LENGTH = 16
_ALPHABET = string.ascii_letters + string.digits
_KEY_PATTERN = re.compile(r"sk_(live|test)_[A-Za-z0-9]{32,128}")


def generate(environment: Environment) -> str:
    secret = "".join(secrets.choice(_ALPHABET) for _ in range(SECRET_LENGTH))
    return f"sk_{environment.value}_{secret}"


def digest(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def display_prefix(plaintext: str) -> str:
    return plaintext[:DISPLAY_PREFIX_LENGTH]


def is_well_formed(candidate: str) -> bool:
    return _KEY_PATTERN.fullmatch(candidate) is not None
