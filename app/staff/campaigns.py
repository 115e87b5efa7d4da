"""Staff pages: Campaigns."""

from __future__ import annotations

from flask import render_template

from app.auth.models import Role
from app.staff.access import requires, staff_blueprint

blueprint = staff_blueprint("staff_campaigns", __name__, url_prefix="/staff/campaigns")


@blueprint.get("/")
@requires(Role.ANALYST)
def index():
    return render_template("staff/campaigns/index.html")
