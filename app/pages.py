"""Server-rendered pages that are not part of the JSON API."""

from __future__ import annotations

from flask import Blueprint, redirect, url_for

from app.campaigns.views import register_campaign_pages
from app.devmail import register_devmail
from app.mailings.feedback.webhooks import webhooks_blueprint
from app.staff import register_staff
from app.tracking.views import register_tracking

home = Blueprint("home", __name__)


@home.get("/")
def index():
    # The front door is the staff app; supporters arrive by links in their mail, never here.
    return redirect(url_for("staff_dashboard.index"))


@home.get("/healthz")
def healthz():
    return {"status": "ok"}


def register_pages(app) -> None:
    app.register_blueprint(home)
    app.register_blueprint(webhooks_blueprint)
    register_tracking(app)
    register_campaign_pages(app)
    register_staff(app)
    if not app.config["CLARION"].is_production:
        register_devmail(app)
