"""Encryption of stored secrets with the key from ONESTOP_ENCRYPTION_KEY."""

from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings

MASK = "••••••"


@lru_cache(maxsize=4)
def _fernet(key: str) -> Fernet:
    return Fernet(key.encode())


def encrypt(plaintext: str) -> str:
    if not plaintext:
        return ""
    return _fernet(settings.ONESTOP_ENCRYPTION_KEY).encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    """Returns the secret; raises ValueError when it was encrypted with another key."""
    if not token:
        return ""
    try:
        return _fernet(settings.ONESTOP_ENCRYPTION_KEY).decrypt(token.encode()).decode()
    except InvalidToken:
        raise ValueError("stored secret cannot be decrypted with ONESTOP_ENCRYPTION_KEY") from None


def mask(value: str | None) -> str:
    return MASK if value else ""
