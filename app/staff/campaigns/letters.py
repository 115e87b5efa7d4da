"""A campaign's model letter and action-page preview, the letters sent, and printing them."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from marshmallow import ValidationError

from app.auth.models import Role
from app.campaigns import letter_text, overviews, services
from app.campaigns import schemas as s
from app.campaigns.letters import letter_rows
from app.campaigns.models import LetterStatus
from app.campaigns.views import page_vars as action_page_vars
from app.extensions import db
from app.security import parse_id
from app.staff.access import requires
from app.staff.campaigns import blueprint
from app.staff.campaigns.forms import LetterForm, blank_to_none, show_campaign_errors
from app.staff.campaigns.views import (
    LETTER_STATUSES,
    campaign_or_404,
    refuse,
    target_or_404,
    warn_of_unknown_placeholders,
)

PRINT_BATCH = 200


@blueprint.route("/<int:campaign_id>/letter", methods=["GET", "POST"])
@requires(Role.CAMPAIGNER)
def letter(campaign_id: int):
    campaign = campaign_or_404(campaign_id)
    context = {"campaign": campaign}
    if request.method == "GET":
        form = LetterForm(data={k: getattr(campaign, k) for k in ("letter_subject", "letter_body")})
        return render_template("staff/campaigns/letter.html", form=form, **context)
    form = LetterForm(request.form)
    payload = blank_to_none({k: request.form.get(k, "") for k in ("letter_subject", "letter_body")})
    try:
        data = s.CampaignPatchSchema(partial=True).load(payload)
    except ValidationError as exc:
        show_campaign_errors(form, exc.messages)
        return refuse("staff/campaigns/letter.html", form, **context)
    services.apply_campaign_fields(campaign, data)
    db.session.commit()
    flash("Model letter saved.", "success")
    warn_of_unknown_placeholders(campaign)
    return redirect(url_for(".preview", campaign_id=campaign.id), 303)


@blueprint.get("/<int:campaign_id>/preview")
@requires(Role.ANALYST)
def preview(campaign_id: int):
    """Show the action page as a supporter would see it; a read, so nothing is recorded."""
    campaign = campaign_or_404(campaign_id)
    asked = request.args.get("supporter", "").strip()[:320]
    supporter = services.find_supporter(asked) if asked else None
    error = "No supporter has that email address or id." if asked and supporter is None else None
    name = supporter.full_name if supporter else ""
    page = render_template(
        "campaigns/action.html",
        **action_page_vars(
            campaign,
            name=name,
            town=letter_text.supporter_town(supporter),
            form_url=f"/campaigns/{campaign.slug}",
            csrf="",  # a preview's form must not be one that records anything
        ),
    )
    return render_template(
        "staff/campaigns/preview.html",
        campaign=campaign,
        supporter=supporter,
        asked=asked,
        error=error,
        page=page,
    ), 200 if error is None else 404


@blueprint.get("/<int:campaign_id>/letters")
@requires(Role.ANALYST)
def letters(campaign_id: int):
    campaign = campaign_or_404(campaign_id)
    target_id = parse_id(request.args.get("target", ""))
    target = target_or_404(campaign, target_id) if request.args.get("target") else None
    status = request.args.get("status", "")
    if status and status not in LETTER_STATUSES:
        abort(404, f"No letter status {status!r}.")
    after = parse_id(request.args.get("after", "")) if request.args.get("after") else None
    rows = list(
        letter_rows(
            campaign.id,
            status=LetterStatus(status) if status else None,
            target_id=target.id if target else None,
            after=after,
            limit=overviews.STAFF_PAGE_SIZE,
        )
    )
    next_after = rows[-1][0].id if len(rows) == overviews.STAFF_PAGE_SIZE else None
    return render_template(
        "staff/campaigns/letters.html",
        campaign=campaign,
        target=target,
        status=status,
        rows=rows,
        next_after=next_after,
        statuses=LETTER_STATUSES,
        supporter_town=letter_text.supporter_town,
    )


@blueprint.get("/<int:campaign_id>/targets/<int:target_id>/print")
@requires(Role.ANALYST)
def print_letters(campaign_id: int, target_id: int):
    """The target's letters held for the post, one per printed page, in batches."""
    campaign = campaign_or_404(campaign_id)
    target = target_or_404(campaign, target_id)
    after = parse_id(request.args.get("after", "")) if request.args.get("after") else None
    rows = list(
        letter_rows(
            campaign.id,
            status=LetterStatus.HELD,
            target_id=target.id,
            after=after,
            limit=PRINT_BATCH,
        )
    )
    letters_to_print = [
        {
            "id": letter.id,
            "date": f"{letter.created_at.day} {letter.created_at:%B %Y}",
            "supporter_name": supporter.full_name if supporter else "",
            "supporter_town": letter_text.supporter_town(supporter),
            "body": letter_text.letter_for_target(action, campaign, target),
        }
        for letter, action, _, supporter in rows
    ]
    next_after = rows[-1][0].id if len(rows) == PRINT_BATCH else None
    return render_template(
        "staff/campaigns/print.html",
        campaign=campaign,
        target=target,
        letters=letters_to_print,
        next_after=next_after,
    )
