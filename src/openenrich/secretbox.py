"""Encryption of the secrets we must keep in plaintext-recoverable form (provider keys).

A Fernet key (AES-128-CBC with HMAC-SHA256) from `OPENENRICH_SECRET_KEY`, or, when that is
unset, from `<data dir>/secret.key`, generated on first start with mode 0600. Several
servers sharing one PostgreSQL database must share the key: set the setting on each.
Losing the key makes stored provider keys unreadable (they must be entered again).
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from openenrich.config import Settings

__all__ = ["InvalidToken", "SecretBox", "load_secret_box"]


class SecretBox:
    def __init__(self, key: bytes | str) -> None:
        self._fernet = Fernet(key)

    def seal(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def open(self, token: str) -> str:
        """The plaintext; InvalidToken when the secret key changed since it was sealed."""
        return self._fernet.decrypt(token.encode()).decode()


def load_secret_box(settings: Settings) -> SecretBox:
    if settings.secret_key:
        return SecretBox(settings.secret_key)
    path = settings.data_dir / "secret.key"
    return SecretBox(_read_or_create(path))


def _read_or_create(path: Path) -> bytes:
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(key)
        file.flush()
        os.fsync(file.fileno())
    try:
        os.link(temporary, path)  # fails if another process made one first: use theirs
    except FileExistsError:
        pass
    finally:
        temporary.unlink()
    return path.read_bytes().strip()
