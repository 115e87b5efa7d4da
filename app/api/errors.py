"""One JSON error shape for every 4xx/5xx the API returns."""

from __future__ import annotations

import logging

from flask import jsonify
from werkzeug.exceptions import HTTPException, InternalServerError

from app.errors import DomainError

log = logging.getLogger(__name__)

# Werkzeug's names ("Unprocessable Entity") become stable machine codes ("unprocessable_entity").
CODE_OVERRIDES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    413: "payload_too_large",
    422: "validation_error",
}
WEBARGS_LOCATIONS = ("json", "query", "form", "files", "headers", "cookies", "json_or_form")

# The documented form of every error body (see `error_body`).
ERROR_JSON_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string", "example": "validation_error"},
                "message": {"type": "string"},
                "details": {
                    "type": "object",
                    "description": "Field messages for validation errors; otherwise "
                    "error-specific context (often empty).",
                },
            },
        }
    },
}


class ApiError(HTTPException):
    """An error a service or view raises on purpose, with a code clients can match on."""

    def __init__(self, status: int, code: str, message: str, details=None):
        super().__init__(description=message)
        self.code = status
        self.error_code = code
        self.details = details


def error_body(status: int, code: str, message: str, details=None):
    response = jsonify({"error": {"code": code, "message": message, "details": details or {}}})
    response.status_code = status
    return response


def domain_error_response(exc: DomainError):
    """Answer a domain error a service raised, in the one error shape."""
    return error_body(exc.status, exc.code, exc.message, exc.details)


def http_error_response(exc: HTTPException):
    status = exc.code or 500
    if isinstance(exc, ApiError):
        return error_body(status, exc.error_code, exc.description, exc.details)
    # webargs/flask-smorest put validation messages in exc.data["messages"].
    data = getattr(exc, "data", None) or {}
    details = _flatten_locations(data.get("messages") or data.get("errors"))
    code = CODE_OVERRIDES.get(status) or (exc.name or "error").lower().replace(" ", "_")
    message = data.get("message") or exc.description or exc.name
    if status == 422 and not data.get("message"):
        message = "Some of the input is invalid; see details."
    if status == 400 and isinstance(details, dict) and "json" in details:
        code, message = "invalid_json", "The request body is not valid JSON."
    response = error_body(status, code, message, details)
    for header, value in exc.get_headers() if status == 405 else []:
        if header.lower() == "allow":
            response.headers["Allow"] = value
    return response


def _flatten_locations(messages):
    """Drop webargs' location level ({"json": {...}}) when only one location failed."""
    if isinstance(messages, dict) and len(messages) == 1:
        ((location, inner),) = messages.items()
        if location in WEBARGS_LOCATIONS and isinstance(inner, dict):
            return inner
    return messages


def unexpected_error_response(exc: Exception):
    if isinstance(exc, HTTPException):
        return http_error_response(exc)
    log.exception("unhandled error in API request")
    return error_body(500, "internal_error", InternalServerError.description)
