"""Campaigns: the list, create (or fill in from a pasted Urgent Action), show, edit, open, close."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from marshmallow import ValidationError
from sqlalchemy.exc import IntegrityError
from wtforms import Form

from app.auth import audit
from app.auth.models import Role
from app.campaigns import overviews, services, targets
from app.campaigns import schemas as s
from app.campaigns.models import Campaign, CampaignStatus, LetterStatus
from app.campaigns.urgent_action import MAX_PASTE_CHARACTERS, parse_urgent_action
from app.errors import Conflict, Invalid
from app.extensions import db
from app.mailings.delivery.launch import hold_scheduled_mailings_of
from app.security import parse_id
from app.staff.access import actor, requires
from app.staff.campaigns import blueprint
from app.staff.campaigns.forms import (
    CAMPAIGN_TEXT_FIELDS,
    CampaignForm,
    campaign_payload,
    show_campaign_errors,
)

LETTER_STATUSES = tuple(status.value for status in LetterStatus)


@blueprint.get("/")
@requires(Role.ANALYST)
def index():
    after = parse_id(request.args.get("after", "")) if request.args.get("after") else None
    rows = overviews.campaign_overviews(after)
    next_after = rows[-1].campaign.id if len(rows) == overviews.STAFF_PAGE_SIZE else None
    return render_template(
        "staff/campaigns/index.html",
        rows=rows,
        next_after=next_after,
        deadline_in_zone=services.deadline_in_zone,
    )


@blueprint.route("/new", methods=["GET", "POST"])
@requires(Role.CAMPAIGNER)
def new():
    if request.method == "GET":
        form = CampaignForm(data={"kind": "letter", "status": "draft", "targets": [{}]})
        return render_template("staff/campaigns/new.html", form=form, paste_text="")
    form = CampaignForm(request.form)
    try:
        data = s.CampaignInSchema().load(campaign_payload(form, with_targets=True))
    except ValidationError as exc:
        show_campaign_errors(form, exc.messages)
        return refuse("staff/campaigns/new.html", form, paste_text="")
    campaign = Campaign(timezone="UTC")
    if not _save(form, campaign, data):
        return refuse("staff/campaigns/new.html", form, paste_text="")
    audit.record(
        actor(),
        "campaign_created",
        subject_type="campaign",
        subject_id=campaign.id,
        detail=f"{campaign.slug} ({campaign.status.value})",
    )
    db.session.commit()
    flash(f"Campaign “{campaign.title}” created.", "success")
    warn_of_unknown_placeholders(campaign)
    return redirect(url_for(".show", campaign_id=campaign.id), 303)


@blueprint.post("/new/from-urgent-action")
@requires(Role.CAMPAIGNER)
def from_urgent_action():
    """Pre-fill the create form from a pasted Urgent Action; nothing is saved here."""
    text = request.form.get("urgent_action", "")
    if not text.strip() or len(text) > MAX_PASTE_CHARACTERS:
        form = CampaignForm(data={"kind": "letter", "status": "draft", "targets": [{}]})
        message = (
            "Paste the Urgent Action's text here."
            if not text.strip()
            else f"Paste at most {MAX_PASTE_CHARACTERS:,} characters."
        )
        return render_template(
            "staff/campaigns/new.html", form=form, paste_text=text[:1000], paste_error=message
        ), 422
    parsed = parse_urgent_action(text)
    fields = parsed.campaign_fields()
    form = CampaignForm(data={**fields, "timezone": "UTC", "targets": fields["targets"] or [{}]})
    return render_template(
        "staff/campaigns/new.html", form=form, paste_text=text, parsed=parsed, from_paste=True
    )


@blueprint.get("/<int:campaign_id>")
@requires(Role.ANALYST)
def show(campaign_id: int):
    campaign = campaign_or_404(campaign_id)
    counts = overviews.letter_counts(campaign.id)
    totals: dict[str, int] = {}
    for by_status in counts.values():
        for status, count in by_status.items():
            totals[status] = totals.get(status, 0) + count
    return render_template(
        "staff/campaigns/show.html",
        campaign=campaign,
        summary=services.sanitise_html(campaign.summary),
        deadline=services.deadline_in_zone(campaign),
        actions=services.action_count(campaign.id),
        counts=counts,
        totals=totals,
        statuses=LETTER_STATUSES,
    )


@blueprint.route("/<int:campaign_id>/edit", methods=["GET", "POST"])
@requires(Role.CAMPAIGNER)
def edit(campaign_id: int):
    campaign = campaign_or_404(campaign_id)
    if request.method == "GET":
        local = services.deadline_in_zone(campaign)
        data = {k: getattr(campaign, k) for k in CAMPAIGN_TEXT_FIELDS}
        data.update(
            kind=campaign.kind.value,
            status=campaign.status.value,
            deadline_date=local.date() if local else None,
        )
        form = CampaignForm(data=data)
        return render_template("staff/campaigns/edit.html", form=form, campaign=campaign)
    form = CampaignForm(request.form)
    payload = campaign_payload(form, with_targets=False)
    payload.pop("status", None)  # opened and closed with their own buttons, which audit it
    try:
        data = s.CampaignPatchSchema(partial=True).load(payload)
    except ValidationError as exc:
        show_campaign_errors(form, exc.messages)
        return refuse("staff/campaigns/edit.html", form, campaign=campaign)
    if not _save(form, campaign, data):
        return refuse("staff/campaigns/edit.html", form, campaign=campaign)
    hold_scheduled_mailings_of(campaign.id)  # the deadline may have moved into the past
    db.session.commit()
    flash("Campaign saved.", "success")
    warn_of_unknown_placeholders(campaign)
    return redirect(url_for(".show", campaign_id=campaign.id), 303)


def _save(form: Form, campaign: Campaign, data: dict) -> bool:
    """Apply checked fields and flush; False (with messages on the form) when refused."""
    slug_owner = services.campaign_id_by_slug(data.get("slug") or "")
    if data.get("slug") and slug_owner not in (None, campaign.id):
        form.slug.errors = ["Another campaign has this web address name."]
        return False
    try:
        targets.check_targets_reachable(data.get("targets") or [])
        services.apply_campaign_fields(campaign, data)
    except (Invalid, Conflict) as exc:
        db.session.rollback()
        show_campaign_errors(form, exc.details or {"form": [exc.message]})
        return False
    db.session.add(campaign)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        form.slug.errors = ["Another campaign has this web address name."]
        return False
    return True


@blueprint.post("/<int:campaign_id>/open")
@requires(Role.CAMPAIGNER)
def open_campaign(campaign_id: int):
    return _change_status(campaign_or_404(campaign_id), CampaignStatus.OPEN, "campaign_opened")


@blueprint.post("/<int:campaign_id>/close")
@requires(Role.CAMPAIGNER)
def close_campaign(campaign_id: int):
    return _change_status(campaign_or_404(campaign_id), CampaignStatus.CLOSED, "campaign_closed")


def _change_status(campaign: Campaign, status: CampaignStatus, action: str):
    if campaign.status != status:
        services.change_status(campaign, status)
        audit.record(actor(), action, subject_type="campaign", subject_id=campaign.id)
        db.session.commit()
        flash(f"The campaign is {status.value}.", "success")
    return redirect(url_for(".show", campaign_id=campaign.id), 303)


# --- for every campaign page -----------------------------------------------------------------


def campaign_or_404(campaign_id: int) -> Campaign:
    campaign = db.session.get(Campaign, campaign_id)
    if campaign is None:
        abort(404, f"There is no campaign {campaign_id}.")
    return campaign


def target_or_404(campaign: Campaign, target_id: int):
    target = targets.target_of(campaign, target_id)
    if target is None:
        abort(404, f"Campaign {campaign.id} has no target {target_id}.")
    return target


def refuse(template: str, form: Form, **context):
    return render_template(template, form=form, **context), 422


def warn_of_unknown_placeholders(campaign: Campaign) -> None:
    unknown = services.unknown_placeholders(campaign.letter_body)
    if unknown:
        flash(
            f"The model letter has {', '.join(unknown)}, which is not a placeholder: "
            "supporters' letters will show it as written.",
            "error",
        )
