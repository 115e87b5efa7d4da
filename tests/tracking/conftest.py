"""Fixtures for the tracking tests: a recipient of a sent mailing, signed URLs, clean caches."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import pytest

from app import create_app
from app.extensions import db
from app.links import tokens as tokens_module
from app.links.tokens import Purpose, TokenService
from app.tracking import buffer, revocations
from app.tracking.services import link_cache
from app.tracking.views import register_tracking
from tests.factories import make_delivery, make_sent_mailing, make_supporter


@pytest.fixture(scope="session")
def tracking_app(app, settings):
    """The app with the tracking routes, whether or not app/pages.py registers them yet."""
    if "tracking" in app.blueprints:
        return app
    application = create_app(settings, {"TESTING": True})
    if "tracking" not in application.blueprints:
        register_tracking(application)
    return application


@pytest.fixture
def client(tracking_app):
    return tracking_app.test_client()


@pytest.fixture(autouse=True)
def _fresh_link_cache():
    # Integration tests truncate with RESTART IDENTITY, so mailing ids come round again.
    link_cache.clear()
    yield
    link_cache.clear()


@pytest.fixture(autouse=True)
def _fresh_revocation_cache():
    # The cache lives on the app, which outlives each test's rolled-back transaction.
    revocations.clear_cache()
    yield
    revocations.clear_cache()


@pytest.fixture(autouse=True, scope="session")
def _flush_only_when_asked():
    # The outbox thread would write on its own schedule, from its own thread, into the test's
    # transaction; tests flush it themselves (drain, flush_outbox).
    interval, buffer.FLUSH_SECONDS = buffer.FLUSH_SECONDS, 3600.0
    yield
    buffer.FLUSH_SECONDS = interval


@pytest.fixture(autouse=True)
def _empty_event_buffer(settings, _flush_only_when_asked):
    # Opens and clicks wait in Redis until drained: none may leak from one test to the next.
    connection = buffer._client(settings.redis_url)
    buffer.outbox.flush()
    connection.delete(buffer.events_key(settings))
    buffer.breaker.reset()
    yield
    buffer.outbox.flush()
    connection.delete(buffer.events_key(settings))
    buffer.breaker.reset()


def drain() -> int:
    """Record the buffered opens and clicks, as the worker clock does."""
    from flask import current_app

    buffer.outbox.flush()
    return buffer.drain_events(current_app.config["CLARION"])


@pytest.fixture
def tokens(settings) -> TokenService:
    return TokenService(settings.secret_keys)


@pytest.fixture
def sign_at(settings, monkeypatch):
    """Return a function signing a token as if at `when` (a Unix time), as an older mail did."""

    def sign(purpose: Purpose, mailing_id: int, supporter_id: int, when: float) -> str:
        with monkeypatch.context() as m:
            m.setattr(tokens_module, "time", SimpleNamespace(time=lambda: when))
            return TokenService(settings.secret_keys).dumps(purpose, mailing_id, supporter_id)

    return sign


@dataclass
class Recipient:
    """Ids, not ORM objects: each test-client request ends by removing the session."""

    mailing_id: int
    supporter_id: int
    delivery_id: int
    tokens: TokenService

    @property
    def supporter(self):
        from app.supporters.models import Supporter

        return db.session.get(Supporter, self.supporter_id)

    def token(self, purpose: Purpose) -> str:
        return self.tokens.dumps(purpose, self.mailing_id, self.supporter_id)

    def path(self, purpose: Purpose) -> str:
        prefix = {
            Purpose.OPEN: "o",
            Purpose.CLICK: "c",
            Purpose.UNSUBSCRIBE: "u",
            Purpose.PREFERENCES: "p",
            Purpose.VIEW: "v",
            Purpose.ACTION: "a",
        }[purpose]
        suffix = ".gif" if purpose == Purpose.OPEN else ""
        return f"/{prefix}/{self.token(purpose)}{suffix}"


@pytest.fixture
def recipient(tokens) -> Recipient:
    mailing = make_sent_mailing()
    supporter = make_supporter("zoe@example.org", first_name="Zoë")
    delivery = make_delivery(mailing, supporter)
    # Commit (a savepoint release here): a request's teardown closes the session, which would
    # roll back anything only flushed.
    db.session.commit()
    return Recipient(mailing.id, supporter.id, delivery.id, tokens)
