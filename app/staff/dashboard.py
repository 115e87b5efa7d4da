"""Staff pages: Dashboard."""

from __future__ import annotations

from flask import render_template

from app.auth.models import Role
from app.staff.access import requires, staff_blueprint

blueprint = staff_blueprint("staff_dashboard", __name__, url_prefix="/staff")


@blueprint.get("/")
@requires(Role.ANALYST)
def index():
    return render_template("staff/dashboard/index.html")
