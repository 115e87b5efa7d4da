"""Staff pages: Supporters — the directory, a supporter's page, lists, tags and saved segments.

Analysts read; campaigners change. Exporting or erasing a person is for admins only, as in
the API (app/privacy/api.py): a GDPR request reaches every domain and cannot be undone.
"""

from __future__ import annotations

from app.staff.access import staff_blueprint

blueprint = staff_blueprint("staff_supporters", __name__, url_prefix="/staff/supporters")

# Imported last, for what importing them does: each attaches its routes to `blueprint`.
from app.staff.supporters import directory, groups, profile, segments  # noqa: E402, F401
