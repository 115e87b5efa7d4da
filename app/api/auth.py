"""Bearer-token authentication and role checks for API views."""

from __future__ import annotations

from functools import wraps

from flask import g, request

from app.api.errors import ApiError
from app.auth.models import Role
from app.auth.services import find_active_token, role_allows
from app.db import utcnow


def current_actor() -> str:
    token = getattr(g, "api_token", None)
    return f"token:{token.name}" if token else "system"


def require_role(required: Role):
    """Let the view run only for a valid bearer token whose role is at least `required`."""

    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            header = request.headers.get("Authorization", "")
            scheme, _, secret = header.partition(" ")
            if scheme.lower() != "bearer" or not secret.strip():
                raise ApiError(401, "unauthorized", "An 'Authorization: Bearer <token>' header is required.")
            token = find_active_token(secret.strip())
            if token is None:
                raise ApiError(401, "unauthorized", "The API token is unknown or has been revoked.")
            if not role_allows(token.role, required):
                raise ApiError(
                    403,
                    "forbidden",
                    f"This needs the {required.value} role; the token has {token.role.value}.",
                )
            token.last_used_at = utcnow()
            g.api_token = token
            return view(*args, **kwargs)

        wrapper._required_role = required  # noqa: SLF001 - read when documenting security
        return wrapper

    return decorator
