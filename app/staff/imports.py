"""Staff pages: CSV imports of supporters and exports."""

from __future__ import annotations

from flask import render_template

from app.auth.models import Role
from app.staff.access import requires, staff_blueprint

blueprint = staff_blueprint("staff_imports", __name__, url_prefix="/staff/imports")


@blueprint.get("/")
@requires(Role.ANALYST)
def index():
    return render_template("staff/imports/index.html")
