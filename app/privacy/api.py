"""GDPR erasure and export under /api/v1/supporters (role `admin`): every domain's share at once.

An edge beside the supporters API: erasing or exporting a person reaches every domain, so the
endpoints live here, above them all, not in app/supporters/api.py.
"""

from __future__ import annotations

from app import privacy
from app.api.auth import current_actor, require_role
from app.api.blueprint import ApiBlueprint, commit, get_or_404
from app.auth import audit
from app.auth.models import Role
from app.supporters.models import Supporter

supporter_privacy = ApiBlueprint(
    "supporter_privacy",
    __name__,
    url_prefix="/supporters",
    description="GDPR requests: erase a supporter everywhere, or export everything stored about one.",
)


@supporter_privacy.delete("/<int:supporter_id>")
@require_role(Role.ADMIN)
@supporter_privacy.response(204)
def erase_supporter(supporter_id):
    """Erase a supporter (GDPR right to erasure).

    Deletes the person with their lists, tags and consent history. Deliveries, bounce and
    tracking events and campaign actions stay, without the supporter, so mailing and campaign
    counts still add up; their letters' text, delivery errors and bounce details are blanked,
    and letters not yet sent are withdrawn. If they had unsubscribed, bounced or complained, a
    SHA-256 of the address is kept so that a later import cannot subscribe them again.
    """
    supporter = get_or_404(Supporter, supporter_id, "supporter")
    privacy.erase_supporter(supporter)
    # The id only, as in the staff app: the log must not keep what was erased.
    audit.record(
        current_actor(), "supporter_erased", subject_type="supporter", subject_id=supporter_id
    )
    commit()


@supporter_privacy.get("/<int:supporter_id>/export")
@require_role(Role.ADMIN)
@supporter_privacy.response(200, description="Everything stored about the supporter, as JSON.")
def export_supporter(supporter_id):
    """Export everything stored about a supporter (GDPR access request).

    Profile, lists, tags, consent history, mailings received (state, Message-ID), bounces,
    opens and clicks, campaign actions with their letters' text and each letter's state.
    """
    exported = privacy.export_supporter(get_or_404(Supporter, supporter_id, "supporter"))
    audit.record(
        current_actor(), "supporter_exported", subject_type="supporter", subject_id=supporter_id
    )
    commit()
    return exported


blueprints = [supporter_privacy]
