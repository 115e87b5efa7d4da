"""Create, check and revoke API tokens."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select

from app.auth import audit
from app.auth.models import ApiToken, Role
from app.db import utcnow
from app.errors import Invalid, NotFound
from app.extensions import db

TOKEN_PREFIX = "clr_"

# Which roles may do what. Analysts read; campaigners manage supporters and mailings; admins all.
ROLE_RANK = {Role.ANALYST: 1, Role.CAMPAIGNER: 2, Role.ADMIN: 3}


def hash_token(token: str) -> str:
    # Tokens are 256 random bits, so a fast unsalted hash is enough (no dictionary to attack).
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(name: str, role: Role | str, *, actor: str | None = None) -> tuple[ApiToken, str]:
    """Create a token and return it with the secret, which is never stored.

    Audited as `actor`'s "token_created" when an actor is given (not for tests' fixtures).
    """
    name = (name or "").strip()[:200]
    if not name:
        raise Invalid("Name the token after who or what uses it.", {"name": "Enter a name."})
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(name=name, role=Role(role), token_hash=hash_token(secret), prefix=secret[:10])
    db.session.add(token)
    db.session.flush()
    if actor is not None:
        audit.record(
            actor,
            "token_created",
            subject_type="api_token",
            subject_id=token.id,
            detail=f"{token.name} ({token.role})",
        )
    return token, secret


def all_tokens() -> list[ApiToken]:
    """Return every token, oldest first (revoked ones too)."""
    return list(db.session.scalars(select(ApiToken).order_by(ApiToken.id)))


def existing_token(token_id: int) -> ApiToken:
    """Return the token with this id, or raise NotFound (a 404 page)."""
    token = db.session.get(ApiToken, token_id)
    if token is None:
        raise NotFound("There is no API token with that id.")
    return token


def find_active_token(secret: str) -> ApiToken | None:
    token = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(secret)))
    if token is None or not token.is_active:
        return None
    return token


class TokenRefused(Exception):
    """The token cannot be used for this request; each API edge answers in its own shape."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def authorize_token(secret: str, required: Role) -> ApiToken:
    """Return the active token with this secret if its role is at least `required`, noting
    its use; raise TokenRefused (401 unknown or revoked, 403 too small a role) otherwise."""
    token = find_active_token(secret)
    if token is None:
        raise TokenRefused(401, "The API token is unknown or has been revoked.")
    if not role_allows(token.role, required):
        raise TokenRefused(
            403, f"This needs the {required.value} role; the token has {token.role.value}."
        )
    token.last_used_at = utcnow()
    return token


def revoke_token(token: ApiToken, *, actor: str) -> None:
    token.revoked_at = utcnow()
    audit.record(
        actor, "token_revoked", subject_type="api_token", subject_id=token.id, detail=token.name
    )


def role_allows(role: Role, required: Role) -> bool:
    return ROLE_RANK[role] >= ROLE_RANK[required]
