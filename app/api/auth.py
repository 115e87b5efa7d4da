"""Bearer-token authentication and role checks for API views."""

from __future__ import annotations

from copy import deepcopy
from functools import wraps

from flask import g, request

from app.api.errors import ApiError
from app.auth.models import Role
from app.auth.services import TokenRefused, authorize_token


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
                raise ApiError(
                    401, "unauthorized", "An 'Authorization: Bearer <token>' header is required."
                )
            try:
                token = authorize_token(secret.strip(), required)
            except TokenRefused as exc:
                code = "unauthorized" if exc.status == 401 else "forbidden"
                raise ApiError(exc.status, code, exc.message) from exc
            g.api_token = token
            return view(*args, **kwargs)

        wrapper._required_role = required  # noqa: SLF001 - read when documenting security
        _document_role(wrapper, required)
        return wrapper

    return decorator


def _document_role(view, required: Role) -> None:
    """Tell the OpenAPI document which role the view needs and how it refuses others."""
    lead, _, rest = (view.__doc__ or "").strip().partition("\n")
    note = f"Needs an API token with the `{required.value}` role or higher."
    view.__doc__ = "\n\n".join(part for part in (lead, rest.strip(), note) if part)
    apidoc = deepcopy(getattr(view, "_apidoc", {}))
    manual = apidoc.setdefault("manual_doc", {})
    manual["security"] = [{"bearerAuth": []}]
    responses = manual.setdefault("responses", {})
    responses.setdefault(401, "UNAUTHORIZED")
    responses.setdefault(403, "FORBIDDEN")
    view._apidoc = apidoc
