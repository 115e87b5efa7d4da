"""The process's own pages: liveness and readiness for a load balancer."""

from __future__ import annotations

import socket
from dataclasses import replace

import pytest

from app import create_app


def test_liveness_says_the_process_answers(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}


def test_readiness_checks_the_database_and_redis(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ready", "database": "ok", "redis": "ok"}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once it is closed


def _answer(settings) -> tuple[int, dict]:
    app = create_app(settings, {"TESTING": True})
    with app.app_context():
        response = app.test_client().get("/readyz")
    return response.status_code, response.get_json()


def test_readiness_is_503_naming_redis_when_redis_is_down(settings):
    down = replace(settings, redis_url=f"redis://127.0.0.1:{_closed_port()}/0")
    status, body = _answer(down)
    assert status == 503
    assert body == {"status": "unavailable", "database": "ok", "redis": "unreachable"}


@pytest.mark.integration  # the session of its own app, not the test's rolled-back connection
def test_readiness_is_503_naming_the_database_when_it_is_down(settings):
    url = settings.database_url.rsplit("/", 1)[0].replace(":5432", f":{_closed_port()}")
    status, body = _answer(replace(settings, database_url=f"{url}/clarion"))
    assert status == 503
    assert body == {"status": "unavailable", "database": "unreachable", "redis": "ok"}
    assert "Traceback" not in str(body)
