"""Fixtures for the tracking tests: a frozen mailing with links, deliveries and signed URLs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest

from app import create_app
from app.config import PROJECT_ROOT
from app.db import utcnow
from app.extensions import db
from app.links.tokens import Purpose, TokenService
from app.mailings.models import Delivery, DeliveryStatus, Mailing, MailingLink, MailingStatus
from app.supporters.services import upsert_supporter
from app.tracking import buffer
from app.tracking.services import link_cache
from app.tracking.views import register_tracking
from mailers.render import freeze

BODY = """
<mj-section><mj-column><mj-text>
  <p>Dear {{ first_name | default("Friend") }},</p>
  <p><a href="https://act.example.org/petition">Sign the petition</a></p>
  <p><a href="https://act.example.org/donate">Donate</a></p>
  <p><a href="https://act.example.org/share">Share</a></p>
</mj-text></mj-column></mj-section>
"""


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


def make_mailing(name="Free the journalists", body=BODY) -> Mailing:
    frozen = freeze(
        "Act now, {{ first_name | default('friend') }}",
        None,
        body,
        None,
        None,
        organisation_name="Rights Watch",
        postal_address="1 Example Street, London",
        templates_dir=PROJECT_ROOT / "templates" / "emails",
    )
    mailing = Mailing(
        name=name,
        subject=name,
        status=MailingStatus.SENT,
        frozen_subject=frozen.subject_source,
        frozen_html=frozen.html_source,
        frozen_text=frozen.text_source,
        frozen_at=utcnow(),
    )
    mailing.links = [
        MailingLink(position=link.position, url=link.url, is_honeypot=link.is_honeypot)
        for link in frozen.links
    ]
    db.session.add(mailing)
    db.session.flush()
    return mailing


def make_supporter(email="zoe@example.org", **data):
    supporter, _ = upsert_supporter({"email": email, **data}, actor="test")
    return supporter


def make_delivery(mailing, supporter, *, sent_ago=timedelta(hours=1)) -> Delivery:
    delivery = Delivery(
        mailing_id=mailing.id,
        supporter_id=supporter.id,
        batch_no=0,
        status=DeliveryStatus.SENT,
        sent_at=utcnow() - sent_ago,
    )
    db.session.add(delivery)
    db.session.flush()
    return delivery


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
    mailing = make_mailing()
    supporter = make_supporter(first_name="Zoë")
    delivery = make_delivery(mailing, supporter)
    # Commit (a savepoint release here): a request's teardown closes the session, which would
    # roll back anything only flushed.
    db.session.commit()
    return Recipient(mailing.id, supporter.id, delivery.id, tokens)
