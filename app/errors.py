"""The one error family every domain raises; each edge maps it once (API JSON, HTML page).

A service says what went wrong in domain terms: a stable machine `code`, a human `message`,
`details` (field names to messages, or context), and the HTTP-ish `status` an edge answers
with. The API turns it into {"error": {code, message, details}} (app/api/errors.py); pages
render the friendly error page (app/__init__.py, and the supporters' problem page in
app/tracking/views.py). This module imports nothing from the domains.
"""

from __future__ import annotations


class DomainError(Exception):
    """A request a service refuses; the class (or the raise) sets code, status and title."""

    code: str = "domain_error"
    status: int = 422
    # The heading of the page a supporter or staff member sees.
    title: str = "We could not do that"

    def __init__(
        self,
        message: str,
        details: dict | None = None,
        *,
        code: str | None = None,
        status: int | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.details = details or {}
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status


class Invalid(DomainError):
    """Input the service cannot use; `details` maps field names to messages."""

    code = "validation_error"
    status = 422
    title = "Please check what you entered"


class NotFound(DomainError):
    """The thing asked for does not exist."""

    code = "not_found"
    status = 404
    title = "Not found"


class Conflict(DomainError):
    """The request clashes with the stored state (a duplicate, a state that forbids it …)."""

    code = "conflict"
    status = 409
    title = "That cannot be done now"
