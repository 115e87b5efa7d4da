"""Staff pages: campaigns, their targets, model letters, previews and letters.

Input is checked by the API's own schemas (app/campaigns/schemas.py) and the campaign
services, so a campaign made here obeys exactly the rules of one made through /api/v1;
their messages are shown next to the fields they name.
"""

from __future__ import annotations

from app.campaigns import letter_text
from app.staff.access import staff_blueprint

blueprint = staff_blueprint("staff_campaigns", __name__, url_prefix="/staff/campaigns")

PLACEHOLDER_MEANINGS = {
    "salutation": "the target's salutation, for example “Dear Mr. Lyons”",
    "supporter_name": "the supporter's name",
    "supporter_town": "the supporter's town, if we know it",
}


@blueprint.context_processor
def _placeholders():
    # Listed from letter_text itself, so the help names exactly what the letters fill in.
    # Every form with a model letter shows it (new, edit and the letter page).
    return {
        "placeholders": [
            (name, PLACEHOLDER_MEANINGS.get(name, "")) for name in letter_text.PLACEHOLDERS
        ]
    }


# Imported last, for what importing them does: each attaches its routes to `blueprint`.
from app.staff.campaigns import letters, targets, views  # noqa: E402, F401
