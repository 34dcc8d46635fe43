"""Domain errors raised by services and selectors; the API and views turn them into answers."""

from __future__ import annotations


class DomainError(Exception):
    """A refusal the caller can act on. `status` is the HTTP status the API answers with."""

    status = 400
    code = "invalid"

    def __init__(self, message: str, *, field_errors: dict[str, list[str]] | None = None, code: str | None = None):
        super().__init__(message)
        self.message = str(message)
        self.field_errors = field_errors or {}
        if code:
            self.code = code


class InvalidInput(DomainError):
    status = 422
    code = "invalid_input"


class NotFound(DomainError):
    status = 404
    code = "not_found"


class PermissionDenied(DomainError):
    status = 403
    code = "forbidden"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class Busy(DomainError):
    """A lock could not be had in time; the caller should try again rather than oversell."""

    status = 503
    code = "busy"
