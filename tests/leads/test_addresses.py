"""The upload's address check: a fast path for plain ASCII addresses that must decide
exactly what email-validator decides, whose verdict stands for every other address."""

from __future__ import annotations

import random

import pytest
from email_validator import EmailNotValidError, validate_email

from openenrich.leads.addresses import MalformedAddress, _fast_key, email_key


def validator_key(address: str) -> str | None:
    try:
        checked = validate_email(address, check_deliverability=False, test_environment=True)
    except EmailNotValidError:
        return None
    return f"{checked.local_part}@{checked.ascii_domain}".lower()


PIECES = [
    "a", "Z", "0", "9", "-", ".", "_", "+", "!", "'", "~", "ü", "xn--", "test", "local",
    "com", "ex-ample", "--", " ", "a" * 63, "b" * 64, "@", "LOCALHOST", "Invalid", "ONION",
    "1", "x" * 200, '"', "(", "[", "\\",
]  # fmt: skip


def generated(rng: random.Random) -> str:
    """Mostly near-valid addresses, so both verdicts are exercised on the edges."""

    def noisy() -> str:
        return "".join(rng.choice(PIECES) for _ in range(rng.randint(1, 3)))

    def clean(alphabet: str, most: int) -> str:
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(1, most)))

    def part(alphabet: str, most: int) -> str:
        return noisy() if rng.random() < 0.15 else clean(alphabet, most)

    local = ".".join(part("aZ09_+!'~-", 12) for _ in range(rng.randint(1, 2)))
    labels = [part("az09-", 10) for _ in range(rng.randint(1, 3))]
    domain = ".".join([*labels, part("abcz", 4)])
    return f"{local}@{domain}"


def test_the_fast_path_agrees_with_email_validator() -> None:
    rng = random.Random(14)
    accepted = 0
    for _ in range(100_000):
        address = generated(rng)
        key = _fast_key(address)
        if key is not None:
            accepted += 1
            assert key == validator_key(address), address
    assert accepted > 20_000, "the generator makes addresses the fast path decides"


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("ada@example.com", "ada@example.com"),
        ("Ada.Lovelace+q3@Example.COM", "ada.lovelace+q3@example.com"),
        ("alan@bletchley.test", "alan@bletchley.test"),
        ("user7@stresstest.example", "user7@stresstest.example"),
        ("Grace@Bücher.de", "grace@xn--bcher-kva.de"),
        ("grace@xn--bcher-kva.de", "grace@xn--bcher-kva.de"),
        ("jörg@example.com", "jörg@example.com"),
    ],
)
def test_keys(address: str, key: str) -> None:
    assert email_key(address) == key


@pytest.mark.parametrize(
    "address",
    ["", "plain", "a@b", "a@localhost", "a@host.local", "a@x.onion", "a..b@example.com",
     ".a@example.com", "a@-example.com", "a@example..com", "a b@example.com",
     "a@xn--zz.com", "a@ab--cd.com", "x" * 250 + "@example.com"],
)  # fmt: skip
def test_malformed(address: str) -> None:
    with pytest.raises(MalformedAddress):
        email_key(address)
