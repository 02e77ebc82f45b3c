"""Domain errors. They know nothing of HTTP; ``api.problems`` maps each to a status code once."""

from __future__ import annotations

from geodata.errors import InputError, Problem  # noqa: F401  (re-exported: one hierarchy)


class DomainError(Exception):
    title = "Request refused"
    status = 400

    def __init__(self, message: str, problems: list[Problem] | None = None, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.problems = problems or []
        # The input the refusal is about, when it is one (a form shows the message beside it).
        self.field = field


class NotFound(DomainError):
    title = "Not found"
    status = 404


class Conflict(DomainError):
    title = "Conflict"
    status = 409


class AuthenticationFailed(DomainError):
    title = "Authentication failed"
    status = 401


class PermissionDenied(DomainError):
    title = "Forbidden"
    status = 403


class InvalidRequest(DomainError):
    title = "Invalid request"
    status = 422


class TooManyAttempts(DomainError):
    """Sign-in refused for now after failed attempts; ``retry_after`` seconds until the next try."""

    title = "Too many failed sign-ins"
    status = 429

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


class AccountLocked(DomainError):
    """Sign-in refused until an administrator unlocks the account."""

    title = "Account locked"
    status = 423
