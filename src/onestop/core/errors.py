"""Errors that services raise and every interface (UI, API, CLI) turns into a clear answer."""

from __future__ import annotations


class ConflictError(Exception):
    """The change contradicts stored data (e.g. deleting a customer that still has users)."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
