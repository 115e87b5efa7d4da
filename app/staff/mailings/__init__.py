"""Staff pages: Mailings — list, compose, A/B test, preview, test, check, send and watch a send.

Every change goes through the same services the API calls (app/mailings/api.py), so a rule
such as "only a draft can be edited" or "the campaign must be open" is written once.
"""

from __future__ import annotations

from app.staff.access import staff_blueprint

blueprint = staff_blueprint("staff_mailings", __name__, url_prefix="/staff/mailings")

# Imported last, for what importing them does: each attaches its routes to `blueprint`.
from app.staff.mailings import abtest, editor, sending, views  # noqa: E402, F401
