"""Staff pages: Supporters."""

from __future__ import annotations

from flask import render_template

from app.auth.models import Role
from app.staff.access import requires, staff_blueprint

blueprint = staff_blueprint("staff_supporters", __name__, url_prefix="/staff/supporters")


@blueprint.get("/")
@requires(Role.ANALYST)
def index():
    return render_template("staff/supporters/index.html")
