"""The error a supporter's link raises when it cannot be used; views turn it into the problem page.

Its own module, below both views (which answer it) and revocations (which raise it for withdrawn
links), so neither has to import the other.
"""

from __future__ import annotations

from app.errors import DomainError


class LinkProblem(DomainError):
    """A link in a mail that cannot be used (cut short, expired, withdrawn …)."""

    code = "link_problem"

    def __init__(self, status: int, title: str, message: str):
        super().__init__(message, status=status)
        self.title = title
