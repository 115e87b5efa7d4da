"""Test fixtures: a real PostgreSQL database and Redis db per xdist worker, a loopback SMTP sink.

Most tests run inside one transaction that is rolled back. Tests marked `integration` drive real
RQ worker processes, which must see committed rows, so they commit and the tables are emptied
afterwards.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import replace

import psycopg
import pytest
import redis
from sqlalchemy import text
from sqlalchemy.orm import scoped_session, sessionmaker

from app import create_app
from app.config import Settings
from app.extensions import db
from tests.smtp_sink import SmtpSink

PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_BASE_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")
# Lets two test runs share one machine (e.g. several developers' checkouts) without colliding.
RUN_ID = os.environ.get("TEST_RUN_ID", "")
REDIS_DB_OFFSET = int(os.environ.get("TEST_REDIS_DB_OFFSET", "1"))


def _worker_index(worker_id: str) -> int:
    return 0 if worker_id == "master" else int(worker_id.removeprefix("gw"))


@pytest.fixture(scope="session")
def test_database_url(worker_id) -> str:
    name = f"clarion_test_{RUN_ID}{worker_id}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return f"{base}/{name}"


@pytest.fixture(scope="session")
def test_redis_url(worker_id) -> str:
    # db 0 is left to local runs; each xdist worker gets its own db number.
    url = f"{REDIS_BASE_URL}/{REDIS_DB_OFFSET + _worker_index(worker_id)}"
    redis.Redis.from_url(url).flushdb()
    return url


@pytest.fixture(scope="session")
def settings(test_database_url, test_redis_url, tmp_path_factory, worker_id) -> Settings:
    base = Settings.from_env({})
    return replace(
        Settings.from_env({"DATABASE_URL": test_database_url}),
        redis_url=test_redis_url,
        base_url="https://clarion.test",
        secret_keys=("test-secret-key-0123456789abcdef-0123456789",),
        mail_from="Clarion Alerts <alerts@clarion.test>",
        import_dir=tmp_path_factory.mktemp("imports"),
        capture_dir=tmp_path_factory.mktemp("mailbox"),
        queue_prefix=f"clarion-test-{RUN_ID}{worker_id}",
        smtp_url=base.smtp_url,
        # Every test signs in from 127.0.0.1; tests/staff/test_sign_in.py checks the real limit.
        staff_login_rate="10000/minute",
    )


@pytest.fixture(scope="session")
def app(settings):
    from flask_migrate import upgrade

    application = create_app(settings, {"TESTING": True})
    with application.app_context():
        upgrade()
    return application


@pytest.fixture(autouse=True)
def app_context(app):
    with app.app_context():
        yield


@pytest.fixture(autouse=True)
def db_session(request, app, app_context):
    """Run the test in a transaction that is rolled back (unless it is an integration test)."""
    if request.node.get_closest_marker("integration"):
        yield db.session
        db.session.remove()
        _truncate_all()
        return
    connection = db.engine.connect()
    transaction = connection.begin()
    original = db.session
    session = scoped_session(
        sessionmaker(bind=connection, join_transaction_mode="create_savepoint")
    )
    db.session = session
    try:
        yield session
    finally:
        session.remove()
        db.session = original
        transaction.rollback()
        connection.close()


def _truncate_all() -> None:
    tables = ", ".join(f'"{t.name}"' for t in db.metadata.sorted_tables)
    with db.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture(autouse=True)
def fresh_rate_limits(app_context):
    """Start and leave every test with no POSTs counted: public forms, sign-in (limiter on)."""
    from app.extensions import limiter

    # A test may point the limiter at a Redis that is down (tests/tracking/test_buffer.py).
    with contextlib.suppress(redis.exceptions.RedisError):
        limiter.reset()
    yield
    with contextlib.suppress(redis.exceptions.RedisError):
        limiter.reset()


@pytest.fixture
def redis_conn(settings):
    conn = redis.Redis.from_url(settings.redis_url)
    yield conn
    conn.flushdb()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def smtp_sink():
    sink = SmtpSink()
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture
def api_token():
    """Return a function making a bearer header for a fresh token of the given role."""
    from app.auth.services import create_token

    def make(role: str = "admin") -> dict:
        _, secret = create_token(f"test-{role}", role)
        return {"Authorization": f"Bearer {secret}"}

    return make


@pytest.fixture
def live(settings, smtp_sink, redis_conn):
    """Serve the real app on a loopback port for a browser, its mail going to `smtp_sink`."""
    from tests.browser_support import live_server

    with live_server(settings, smtp_sink.url) as server:
        yield server
