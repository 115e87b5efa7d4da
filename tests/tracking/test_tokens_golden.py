"""Pin the token format: links in mail already sent must keep verifying after any refactor.

A token is in every link of every mail Clarion has sent. Renaming a purpose's salt, changing the
payload layout or the key order would silently break all of them, so the exact bytes a fixed key
signs at a fixed time are committed here. If one of these goldens fails, do not update it: the
change would invalidate every link already delivered.

These tests need no database (the mutation runner runs them with --noconftest).
"""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime

import pytest
from itsdangerous import URLSafeTimedSerializer

from app.links.tokens import LinkClaims, Purpose, TokenError, TokenExpired, TokenService

SIGNING_KEY = "golden-signing-key-0123456789abcdef"
RETIRED_KEY = "golden-retired-key-0123456789abcdef"
SIGNED_AT = 1767225600  # 2026-01-01T00:00:00Z
MAILING_ID, SUPPORTER_ID = 4242, 987654

# Signed by TokenService((SIGNING_KEY, RETIRED_KEY)) at SIGNED_AT + 0.25 s.
GOLDEN = {
    Purpose.ACTION: "WzQyNDIsOTg3NjU0XQ.aVW5AA.swiKN0fP8qvCSTPRdoe6MUteLZY",
    Purpose.UNSUBSCRIBE: "WzQyNDIsOTg3NjU0XQ.aVW5AA.OfbWSYDXibnYIhajD8tr1XzYrCU",
    Purpose.PREFERENCES: "WzQyNDIsOTg3NjU0XQ.aVW5AA.gu5A9OJEvkGCePUVgp5M11iXEsY",
    Purpose.OPEN: "WzQyNDIsOTg3NjU0XQ.aVW5AA.SAWRZjfNnx_hSC2mDazlCAL3p8Q",
    Purpose.CLICK: "WzQyNDIsOTg3NjU0XQ.aVW5AA.kZ4isy50uTpLR1YoGH7ildTT9UY",
    Purpose.VIEW: "WzQyNDIsOTg3NjU0XQ.aVW5AA._aydGzilJHoVZ5h_xB9qK-Xqg_U",
}
# The same claims and time, signed by a service that only had RETIRED_KEY (before rotation).
GOLDEN_RETIRED_ACTION = "WzQyNDIsOTg3NjU0XQ.aVW5AA.Puw0nJX2NEcJ-6MfpKbaNccHAps"
# The salts are part of the wire format, spelled out rather than derived from Purpose.
SALTS = {
    Purpose.ACTION: "clarion.action",
    Purpose.UNSUBSCRIBE: "clarion.unsubscribe",
    Purpose.PREFERENCES: "clarion.preferences",
    Purpose.OPEN: "clarion.open",
    Purpose.CLICK: "clarion.click",
    Purpose.VIEW: "clarion.view",
}


class Clock:
    """time.time under the test's control (both tokens.py and itsdangerous read it)."""

    def __init__(self, monkeypatch, now: float):
        self.now = now
        monkeypatch.setattr(time, "time", lambda: self.now)


@pytest.fixture
def clock(monkeypatch):
    return Clock(monkeypatch, SIGNED_AT + 0.25)


@pytest.fixture
def service():
    return TokenService((SIGNING_KEY, RETIRED_KEY))


def test_the_purposes_are_exactly_these():
    assert {p.name: p.value for p in Purpose} == {
        "ACTION": "action",
        "UNSUBSCRIBE": "unsubscribe",
        "PREFERENCES": "preferences",
        "OPEN": "open",
        "CLICK": "click",
        "VIEW": "view",
    }


@pytest.mark.parametrize("purpose", list(Purpose), ids=str)
def test_token_is_byte_for_byte_the_golden_one(clock, service, purpose):
    assert service.dumps(purpose, MAILING_ID, SUPPORTER_ID) == GOLDEN[purpose]


@pytest.mark.parametrize("purpose", list(Purpose), ids=str)
def test_golden_token_verifies_with_its_claims_and_signing_time(clock, service, purpose):
    clock.now = SIGNED_AT + 86400 * 365  # a year later, no max_age: still a valid link
    claims, signed_at = service.loads_with_timestamp(purpose, GOLDEN[purpose])
    assert claims == LinkClaims(mailing_id=MAILING_ID, supporter_id=SUPPORTER_ID)
    assert type(claims.mailing_id) is int and type(claims.supporter_id) is int
    assert signed_at == datetime(2026, 1, 1, tzinfo=UTC)
    assert service.loads(purpose, GOLDEN[purpose]) == claims


@pytest.mark.parametrize("purpose", list(Purpose), ids=str)
def test_golden_token_is_plain_itsdangerous_with_the_purpose_salt(clock, purpose):
    # Anything else that verifies Clarion links (a proxy, an old worker) relies on this.
    reference = URLSafeTimedSerializer([SIGNING_KEY], salt=SALTS[purpose])
    assert reference.dumps([MAILING_ID, SUPPORTER_ID]) == GOLDEN[purpose]
    assert reference.loads(GOLDEN[purpose]) == [MAILING_ID, SUPPORTER_ID]


@pytest.mark.parametrize(
    "signed_for, checked_as",
    [(a, b) for a in Purpose for b in Purpose if a != b],
    ids=lambda p: str(p),
)
def test_a_token_of_one_purpose_fails_for_every_other(clock, service, signed_for, checked_as):
    with pytest.raises(TokenError) as caught:
        service.loads(checked_as, GOLDEN[signed_for])
    assert type(caught.value) is TokenError  # a bad signature, not an expiry


def test_tokens_signed_in_another_second_carry_that_second(clock, service):
    first = service.dumps(Purpose.CLICK, 1, 2)
    clock.now += 1
    second = service.dumps(Purpose.CLICK, 1, 2)
    assert first != second
    assert service.loads_with_timestamp(Purpose.CLICK, first)[1].timestamp() == SIGNED_AT
    assert service.loads_with_timestamp(Purpose.CLICK, second)[1].timestamp() == SIGNED_AT + 1
    clock.now += 0.5  # same second again: same token
    assert service.dumps(Purpose.CLICK, 1, 2) == second


def test_ids_are_written_as_integers(clock, service):
    assert service.dumps(Purpose.ACTION, "4242", 987654.0) == GOLDEN[Purpose.ACTION]


class TestExpiry:
    @pytest.mark.parametrize("age", [0, 1, 99, 100])
    def test_token_within_max_age_verifies(self, clock, service, age):
        token = service.dumps(Purpose.ACTION, MAILING_ID, SUPPORTER_ID)
        clock.now = SIGNED_AT + age
        assert service.loads(Purpose.ACTION, token, max_age=100).supporter_id == SUPPORTER_ID

    @pytest.mark.parametrize("age", [101, 86400])
    def test_token_older_than_max_age_raises_token_expired(self, clock, service, age):
        token = service.dumps(Purpose.ACTION, MAILING_ID, SUPPORTER_ID)
        clock.now = SIGNED_AT + age
        with pytest.raises(TokenExpired):
            service.loads(Purpose.ACTION, token, max_age=100)
        with pytest.raises(TokenExpired):
            service.loads_with_timestamp(Purpose.ACTION, token, max_age=100)

    def test_expired_is_a_token_error_and_says_how_old(self, clock, service):
        token = service.dumps(Purpose.ACTION, MAILING_ID, SUPPORTER_ID)
        clock.now = SIGNED_AT + 500
        with pytest.raises(TokenError, match=r"500 > 100"):
            service.loads(Purpose.ACTION, token, max_age=100)

    def test_token_from_the_future_is_expired_too(self, clock, service):
        clock.now = SIGNED_AT - 60  # the verifying clock is behind the signer's
        with pytest.raises(TokenExpired):
            service.loads(Purpose.ACTION, GOLDEN[Purpose.ACTION], max_age=100)

    def test_a_forged_old_token_is_not_expired_but_invalid(self, clock, service):
        clock.now = SIGNED_AT + 86400
        forged = GOLDEN[Purpose.ACTION][:-4] + "AAAA"
        with pytest.raises(TokenError) as caught:
            service.loads(Purpose.ACTION, forged, max_age=100)
        assert not isinstance(caught.value, TokenExpired)


class TestKeyRotation:
    def test_the_first_key_signs(self, clock):
        token = TokenService((SIGNING_KEY, RETIRED_KEY)).dumps(Purpose.ACTION, MAILING_ID, 987654)
        assert TokenService((SIGNING_KEY,)).loads(Purpose.ACTION, token).mailing_id == MAILING_ID
        with pytest.raises(TokenError):
            TokenService((RETIRED_KEY,)).loads(Purpose.ACTION, token)

    def test_token_signed_before_rotation_still_verifies(self, clock, service):
        assert (
            TokenService((RETIRED_KEY,)).dumps(Purpose.ACTION, MAILING_ID, SUPPORTER_ID)
            == GOLDEN_RETIRED_ACTION
        )
        assert service.loads(Purpose.ACTION, GOLDEN_RETIRED_ACTION).supporter_id == SUPPORTER_ID

    def test_token_of_a_removed_key_fails(self, clock):
        with pytest.raises(TokenError):
            TokenService((SIGNING_KEY,)).loads(Purpose.ACTION, GOLDEN_RETIRED_ACTION)

    def test_a_list_of_keys_works_like_a_tuple(self, clock):
        service = TokenService([SIGNING_KEY, RETIRED_KEY])
        assert service.dumps(Purpose.OPEN, MAILING_ID, SUPPORTER_ID) == GOLDEN[Purpose.OPEN]

    @pytest.mark.parametrize("keys", [(), []])
    def test_no_key_is_refused(self, keys):
        with pytest.raises(ValueError, match="^at least one secret key is needed$"):
            TokenService(keys)


@pytest.mark.parametrize(
    "payload",
    [[1], [1, 2, 3], [], [True, 2], [1, False], ["1", 2], [1, 2.0], {"m": 1, "s": 2}, 12, None],
    ids=repr,
)
def test_a_genuine_signature_over_the_wrong_payload_shape_is_refused(clock, service, payload):
    forged = URLSafeTimedSerializer([SIGNING_KEY], salt=SALTS[Purpose.ACTION]).dumps(payload)
    with pytest.raises(TokenError, match="^token payload has the wrong shape$"):
        service.loads(Purpose.ACTION, forged)


def test_claims_are_immutable():
    claims = LinkClaims(1, 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        claims.mailing_id = 3  # type: ignore[misc]
