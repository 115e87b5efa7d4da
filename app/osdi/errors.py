"""The OSDI error: Action Network's shape, {"error": "message"}, with an HTTP status."""

from __future__ import annotations


class OsdiError(Exception):
    """A request the OSDI API refuses; answered as {"error": message} with `status`."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message
