"""Campaigns under /api/v1: `analyst` reads, `campaigner` creates and changes."""

from __future__ import annotations

from flask import Response, render_template
from sqlalchemy import select

from app.api.auth import require_role
from app.api.blueprint import ApiBlueprint, commit, get_or_404
from app.api.errors import ApiError
from app.api.pagination import PageArgsSchema, page_schema, paginate
from app.auth.models import Role
from app.campaigns import schemas as s
from app.campaigns import services
from app.campaigns.confirmations import pending_summary
from app.campaigns.letters import letter_rows, letters_csv
from app.campaigns.models import (
    Action,
    Campaign,
    CampaignKind,
    CampaignStatus,
    CampaignTarget,
    Letter,
)
from app.campaigns.services import letter_for_target
from app.extensions import db
from app.mailings.launch import hold_scheduled_mailings_of

campaigns = ApiBlueprint(
    "campaigns",
    __name__,
    url_prefix="/campaigns",
    description="Urgent actions: targets, model letters, supporters' actions and their letters.",
)


def _apply(campaign: Campaign, data: dict) -> None:
    """Copy validated fields onto the campaign, turning a deadline date into its day's end."""
    timezone = data.get("timezone") or campaign.timezone or "UTC"
    services.check_timezone(timezone)
    if data.get("deadline_date"):
        data["deadline"] = services.end_of_day(data.pop("deadline_date"), timezone)
    data["timezone"] = timezone
    targets = data.pop("targets", None)
    for name, value in data.items():
        if name in ("kind", "status"):
            value = CampaignKind(value) if name == "kind" else CampaignStatus(value)
        setattr(campaign, name, value)
    if campaign.kind == CampaignKind.CLICK and not campaign.external_url:
        raise ApiError(
            422,
            "validation_error",
            "A click campaign needs `external_url`.",
            {"external_url": ["Required for click campaigns."]},
        )
    if targets is not None:
        if (
            campaign.id is not None
            and db.session.scalar(
                select(Action.id).where(Action.campaign_id == campaign.id).limit(1)
            )
            is not None
        ):
            raise ApiError(
                409,
                "campaign_has_actions",
                "Supporters have acted already: targets can no longer be replaced.",
            )
        campaign.targets = [CampaignTarget(position=n, **t) for n, t in enumerate(targets)]


@campaigns.post("")
@require_role(Role.CAMPAIGNER)
@campaigns.arguments(s.CampaignInSchema)
@campaigns.response(201, s.CampaignSchema)
def create_campaign(data):
    """Create a campaign with its targets and model letter."""
    campaign = Campaign(timezone="UTC")
    _apply(campaign, data)
    db.session.add(campaign)
    commit("A campaign with this slug exists already.")
    return campaign


@campaigns.get("")
@require_role(Role.ANALYST)
@campaigns.arguments(PageArgsSchema, location="query")
@campaigns.response(200, page_schema(s.CampaignSchema))
def list_campaigns(args):
    """List campaigns, newest first."""
    return paginate(select(Campaign).order_by(Campaign.id.desc()), args)


@campaigns.get("/<int:campaign_id>")
@require_role(Role.ANALYST)
@campaigns.response(200, s.CampaignSchema)
def get_campaign(campaign_id):
    """Get one campaign with its targets."""
    return get_or_404(Campaign, campaign_id, "campaign")


@campaigns.patch("/<int:campaign_id>")
@require_role(Role.CAMPAIGNER)
@campaigns.arguments(s.CampaignPatchSchema(partial=True))
@campaigns.response(200, s.CampaignSchema)
def patch_campaign(data, campaign_id):
    """Change some fields; `targets`, when given, replaces them all (only before any action).

    Closing the campaign, setting it back to draft or moving its deadline into the past
    pauses the mailings scheduled to link to it, each saying why in `status_reason`.
    """
    campaign = get_or_404(Campaign, campaign_id, "campaign")
    _apply(campaign, data)
    hold_scheduled_mailings_of(campaign)
    commit("A campaign with this slug exists already.")
    return campaign


@campaigns.delete("/<int:campaign_id>")
@require_role(Role.CAMPAIGNER)
@campaigns.response(204)
def delete_campaign(campaign_id):
    """Delete a draft campaign; one that was open is closed instead, keeping its actions."""
    campaign = get_or_404(Campaign, campaign_id, "campaign")
    if campaign.status != CampaignStatus.DRAFT:
        raise ApiError(
            409,
            "campaign_not_draft",
            "Only draft campaigns can be deleted; set `status: closed` instead.",
        )
    db.session.delete(campaign)
    commit()


@campaigns.get("/<int:campaign_id>/actions")
@require_role(Role.ANALYST)
@campaigns.arguments(PageArgsSchema, location="query")
@campaigns.response(200, page_schema(s.ActionSchema))
def list_actions(args, campaign_id):
    """List the campaign's actions, oldest first; `pagination.total` is the count."""
    get_or_404(Campaign, campaign_id, "campaign")
    stmt = select(Action).where(Action.campaign_id == campaign_id).order_by(Action.id)
    return paginate(stmt, args)


@campaigns.get("/<int:campaign_id>/letters")
@require_role(Role.ANALYST)
@campaigns.arguments(s.LetterQuerySchema, location="query")
@campaigns.response(200, page_schema(s.LetterSchema))
def list_letters(args, campaign_id):
    """List the campaign's letters with their delivery state (queued, sent, failed, held)."""
    get_or_404(Campaign, campaign_id, "campaign")
    stmt = (
        select(Letter)
        .join(Action, Letter.action_id == Action.id)
        .where(Action.campaign_id == campaign_id)
        .order_by(Letter.id)
    )
    if args.get("status"):
        stmt = stmt.where(Letter.status == args["status"])
    return paginate(stmt, args)


@campaigns.get("/<int:campaign_id>/letters.csv")
@require_role(Role.ANALYST)
@campaigns.response(200, description="Every letter as CSV (text/csv).")
def export_letters(campaign_id):
    """Export every letter as CSV, for printing and posting the held ones."""
    campaign = get_or_404(Campaign, campaign_id, "campaign")
    return Response(
        letters_csv(campaign.id),
        200,
        {
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{campaign.slug}-letters.csv"',
        },
    )


@campaigns.get("/<int:campaign_id>/targets/<int:target_id>/print")
@require_role(Role.ANALYST)
@campaigns.response(200, description="An HTML page with one letter per printed page.")
def print_letters(campaign_id, target_id):
    """Show the target's letters, one per printed page, ready to post."""
    campaign = get_or_404(Campaign, campaign_id, "campaign")
    target = db.session.get(CampaignTarget, target_id)
    if target is None or target.campaign_id != campaign.id:
        raise ApiError(404, "not_found", f"No target {target_id} in campaign {campaign_id}.")

    letters = [
        {
            "date": f"{letter.created_at:%d %B %Y}",
            "body": letter_for_target(action, campaign, target),
        }
        for letter, action, _, _ in letter_rows(campaign.id, target_id=target.id)
    ]
    html = render_template(
        "campaigns/print.html", campaign=campaign, target=target, letters=letters
    )
    return Response(html, 200, {"Content-Type": "text/html; charset=utf-8"})


@campaigns.get("/<int:campaign_id>/pending")
@require_role(Role.CAMPAIGNER)
@campaigns.response(200, s.PendingSummarySchema)
def pending_actions(campaign_id):
    """Count actions from public forms awaiting their address's confirmation, and bursts."""
    get_or_404(Campaign, campaign_id, "campaign")
    return pending_summary(campaign_id)


blueprints = [campaigns]
