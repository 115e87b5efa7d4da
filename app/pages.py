"""Server-rendered pages that are not part of the JSON API."""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, redirect, url_for
from sqlalchemy import text

from app.campaigns.views import register_campaign_pages
from app.devmail import register_devmail
from app.extensions import db
from app.mailings.feedback.webhooks import webhooks_blueprint
from app.queues import redis_connection
from app.staff import register_staff
from app.tracking.views import register_tracking

home = Blueprint("home", __name__)


@home.get("/")
def index():
    # The front door is the staff app; supporters arrive by links in their mail, never here.
    return redirect(url_for("staff_dashboard.index"))


log = logging.getLogger(__name__)


@home.get("/healthz")
def healthz():
    """Liveness: the process answers. A balancer's restart check; it touches nothing else."""
    return {"status": "ok"}


@home.get("/readyz")
def readyz():
    """Readiness: this web process can reach PostgreSQL and Redis, so it can serve and queue.

    503 names what is down (never why: the reason is logged), so a balancer stops sending
    requests here until it is back.
    """
    checks = {"database": _database_answers(), "redis": _redis_answers()}
    ready = all(checks.values())
    body = {"status": "ready" if ready else "unavailable"}
    body.update({name: "ok" if ok else "unreachable" for name, ok in checks.items()})
    return body, 200 if ready else 503


def _database_answers() -> bool:
    try:
        db.session.execute(text("SELECT 1"))
        return True
    except Exception:
        log.warning("readiness: the database does not answer", exc_info=True)
        db.session.rollback()
        return False
    finally:
        db.session.remove()


def _redis_answers() -> bool:
    url = current_app.config["CLARION"].redis_url
    try:
        with redis_connection(url, timeout=2) as redis:
            return bool(redis.ping())
    except Exception:
        log.warning("readiness: Redis does not answer", exc_info=True)
        return False


def register_pages(app) -> None:
    app.register_blueprint(home)
    app.register_blueprint(webhooks_blueprint)
    register_tracking(app)
    register_campaign_pages(app)
    register_staff(app)
    if not app.config["CLARION"].is_production:
        register_devmail(app)
