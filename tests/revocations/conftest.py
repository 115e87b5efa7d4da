"""Fixtures for link revocations: a fresh revocation cache, tokens signed at a chosen time."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from app.links import tokens as tokens_module
from app.links.tokens import Purpose, TokenService
from app.tracking import revocations


@pytest.fixture(autouse=True)
def _fresh_revocation_cache():
    # The cache lives on the app, which outlives each test's rolled-back transaction.
    revocations.clear_cache()
    yield
    revocations.clear_cache()


@pytest.fixture
def sign_at(settings, monkeypatch):
    """Return a function signing a token as if at `when` (a Unix time), as an older mail did."""

    def sign(purpose: Purpose, mailing_id: int, supporter_id: int, when: float) -> str:
        with monkeypatch.context() as m:
            m.setattr(tokens_module, "time", SimpleNamespace(time=lambda: when))
            return TokenService(settings.secret_keys).dumps(purpose, mailing_id, supporter_id)

    return sign
