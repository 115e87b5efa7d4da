"""Staff pages: Dashboard — what is sending, what is scheduled, recent results, open campaigns."""

from __future__ import annotations

from datetime import datetime

from flask import render_template

from app.auth.models import Role
from app.campaigns.services import deadline_in_zone, open_campaigns
from app.db import utcnow
from app.staff.access import requires, staff_blueprint
from app.tracking import overview

blueprint = staff_blueprint("staff_dashboard", __name__, url_prefix="/staff")


@blueprint.get("/")
@requires(Role.ANALYST)
def index():
    now = utcnow()
    campaigns = [(c, deadline_in_zone(c), time_left(c.deadline, now)) for c in open_campaigns(now)]
    return render_template(
        "staff/dashboard/index.html",
        dashboard=overview.dashboard(),
        campaigns=campaigns,
        duration=duration,
    )


@blueprint.get("/live")
@requires(Role.ANALYST)
def live():
    """The "sending now" section alone, which the dashboard polls for while it is open."""
    return render_template(
        "staff/dashboard/_live.html", in_progress=overview.live_progress(), duration=duration
    )


def time_left(deadline: datetime | None, now: datetime) -> str:
    """Say how long a campaign has left in whole units, rounded down: "3 days left"."""
    if deadline is None:
        return "No deadline"
    seconds = (deadline - now).total_seconds()
    if seconds <= 0:
        return "Deadline passed"
    days, hours = int(seconds // 86400), int(seconds // 3600)
    if days:
        return f"{days} day{'s' if days != 1 else ''} left"
    if hours:
        return f"{hours} hour{'s' if hours != 1 else ''} left"
    return "Less than an hour left"


def duration(seconds: float | None) -> str:
    """Say a time left to send as staff would: "about 12 min", "about 2 h 5 min"."""
    if seconds is None:
        return "—"
    minutes = max(round(seconds / 60), 1)
    if minutes < 60:
        return f"about {minutes} min"
    return f"about {minutes // 60} h {minutes % 60} min"
