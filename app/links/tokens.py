"""Signed tokens for per-recipient links, one serializer per purpose.

A token carries opaque ids only (mailing id, supporter id), never an email address. The purpose
is the salt, so an unsubscribe token can never be replayed as an action token. The first of
SECRET_KEYS signs; every key verifies, so keys rotate without breaking links already sent.
"""

from __future__ import annotations

import enum
import hmac
import time
from dataclasses import dataclass
from datetime import datetime

from itsdangerous import BadData, SignatureExpired, URLSafeTimedSerializer
from itsdangerous.encoding import base64_encode, int_to_bytes


class Purpose(enum.StrEnum):
    ACTION = "action"
    UNSUBSCRIBE = "unsubscribe"
    PREFERENCES = "preferences"
    OPEN = "open"
    CLICK = "click"
    VIEW = "view"


class TokenError(Exception):
    """The token is not one Clarion signed for this purpose."""


class TokenExpired(TokenError):
    """The token was genuine but is too old for its purpose."""


@dataclass(frozen=True)
class LinkClaims:
    mailing_id: int
    supporter_id: int


class TokenService:
    def __init__(self, secret_keys: tuple[str, ...] | list[str]):
        if not secret_keys:
            raise ValueError("at least one secret key is needed")
        # itsdangerous signs with the last key and verifies with all: put the signing key last.
        keys = list(reversed(secret_keys))
        self._serializers = {
            purpose: URLSafeTimedSerializer(keys, salt=f"clarion.{purpose.value}")
            for purpose in Purpose
        }
        # Every message carries six tokens, so signing skips itsdangerous's per-call work (a
        # new signer, JSON, a zlib attempt, deriving the key again): the key is derived once
        # and the token is assembled exactly as TimestampSigner.sign would, which `loads`
        # and the tests check.
        self._signing_keys = {
            purpose: serializer.make_signer(serializer.salt).derive_key()
            for purpose, serializer in self._serializers.items()
        }
        self._timestamp_second = -1
        self._timestamp = b""

    def dumps(self, purpose: Purpose, mailing_id: int, supporter_id: int) -> str:
        # A compact list, not a dict: tokens end up in every link of every mail.
        payload = base64_encode(f"[{int(mailing_id)},{int(supporter_id)}]".encode())
        now = int(time.time())
        if now != self._timestamp_second:
            self._timestamp_second, self._timestamp = now, base64_encode(int_to_bytes(now))
        signed = payload + b"." + self._timestamp
        signature = hmac.digest(self._signing_keys[purpose], signed, "sha1")
        return (signed + b"." + base64_encode(signature)).decode("ascii")

    def loads(self, purpose: Purpose, token: str, max_age: int | None = None) -> LinkClaims:
        return self.loads_with_timestamp(purpose, token, max_age=max_age)[0]

    def loads_with_timestamp(
        self, purpose: Purpose, token: str, max_age: int | None = None
    ) -> tuple[LinkClaims, datetime]:
        """Verify a token; return its claims and when it was signed (UTC, whole seconds)."""
        try:
            payload, signed_at = self._serializers[purpose].loads(
                token, max_age=max_age, return_timestamp=True
            )
        except SignatureExpired as exc:
            raise TokenExpired(str(exc)) from exc
        except (BadData, UnicodeError, ValueError) as exc:
            raise TokenError(str(exc)) from exc
        if (
            not isinstance(payload, list)
            or len(payload) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in payload)
        ):
            raise TokenError("token payload has the wrong shape")
        return LinkClaims(mailing_id=payload[0], supporter_id=payload[1]), signed_at


# Its own serializer, not a Purpose: the payload is one id (a pending action), not a link's claims.
CONFIRM_SALT = "clarion.confirm-action"


class ConfirmTokens:
    """Sign and read the confirmation links of held campaign actions: the pending action's id only."""

    def __init__(self, secret_keys: tuple[str, ...]):
        # itsdangerous signs with the last key and verifies with all: put the signing key last.
        self._serializer = URLSafeTimedSerializer(list(reversed(secret_keys)), salt=CONFIRM_SALT)

    def dumps(self, pending_id: int) -> str:
        return self._serializer.dumps([int(pending_id)])

    def loads(self, token: str, max_age: int) -> int:
        try:
            payload = self._serializer.loads(token, max_age=max_age)
        except SignatureExpired as exc:
            raise TokenExpired(str(exc)) from exc
        except (BadData, UnicodeError, ValueError) as exc:
            raise TokenError(str(exc)) from exc
        if (
            not isinstance(payload, list)
            or len(payload) != 1
            or not isinstance(payload[0], int)
            or isinstance(payload[0], bool)
        ):
            raise TokenError("token payload has the wrong shape")
        return payload[0]
