"""API tokens: only a hash is stored, the token itself is shown once."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, Enum, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import BigId, UtcDateTime, utcnow
from app.extensions import db


class Role(enum.StrEnum):
    ADMIN = "admin"
    CAMPAIGNER = "campaigner"
    ANALYST = "analyst"


class ApiToken(db.Model):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[Role] = mapped_column(
        Enum(Role, name="api_role", values_callable=lambda members: [m.value for m in members])
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class StaffUser(db.Model):
    """Someone who signs in to the staff web app (campaign staff, analysts, admins)."""

    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[Role] = mapped_column(
        Enum(Role, name="staff_role", values_callable=lambda members: [m.value for m in members])
    )
    password_hash: Mapped[str] = mapped_column(String(255))
    # Part of every session's id: changing it signs the user out everywhere at once.
    session_token: Mapped[str] = mapped_column(String(64))
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    # The last 30-second step a code was accepted for: a code works once.
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    disabled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    @property
    def is_active(self) -> bool:
        return self.disabled_at is None

    @property
    def has_two_factor(self) -> bool:
        return self.totp_secret is not None

    # Flask-Login's user interface, written out so the session id carries the session token.
    is_authenticated = True
    is_anonymous = False

    def get_id(self) -> str:
        return f"{self.id}:{self.session_token}"


class AuditEntry(db.Model):
    """Who did what: sends, pauses, imports, erasures, role changes, tokens created."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(400))
    action: Mapped[str] = mapped_column(String(80), index=True)
    subject_type: Mapped[str | None] = mapped_column(String(40))
    subject_id: Mapped[int | None] = mapped_column(BigInteger)
    detail: Mapped[str] = mapped_column(Text, default="")
