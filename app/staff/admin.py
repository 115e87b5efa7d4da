"""Staff pages: Admin."""

from __future__ import annotations

from flask import render_template

from app.auth.models import Role
from app.staff.access import requires, staff_blueprint

blueprint = staff_blueprint("staff_admin", __name__, url_prefix="/staff/admin")


@blueprint.get("/")
@requires(Role.ADMIN)
def index():
    return render_template("staff/admin/index.html")
