"""The one exception services raise for bad input: a message for people and the field at fault."""

from __future__ import annotations


class ValidationError(ValueError):
    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
