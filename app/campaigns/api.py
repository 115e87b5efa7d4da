"""Campaigns under /api/v1: `analyst` reads, `campaigner` creates and changes."""

from __future__ import annotations

from flask import Response, render_template

from app.api.auth import require_role
from app.api.blueprint import ApiBlueprint, commit, get_or_404
from app.api.errors import ApiError
from app.api.pagination import PageArgsSchema, page_schema
from app.auth.models import Role
from app.campaigns import schemas as s
from app.campaigns import services
from app.campaigns.confirmations import pending_summary
from app.campaigns.letter_text import letter_for_target
from app.campaigns.letters import letter_rows, letters_csv
from app.campaigns.models import (
    Campaign,
    CampaignStatus,
    CampaignTarget,
)
from app.extensions import db
from app.mailings.delivery.launch import hold_scheduled_mailings_of

campaigns = ApiBlueprint(
    "campaigns",
    __name__,
    url_prefix="/campaigns",
    description="Urgent actions: targets, model letters, supporters' actions and their letters.",
)


@campaigns.post("")
@require_role(Role.CAMPAIGNER)
@campaigns.arguments(s.CampaignInSchema)
@campaigns.response(201, s.CampaignSchema)
def create_campaign(data):
    """Create a campaign with its targets and model letter."""
    campaign = Campaign(timezone="UTC")
    services.apply_campaign_fields(campaign, data)
    db.session.add(campaign)
    commit("A campaign with this slug exists already.")
    return campaign


@campaigns.get("")
@require_role(Role.ANALYST)
@campaigns.arguments(PageArgsSchema, location="query")
@campaigns.response(200, page_schema(s.CampaignSchema))
def list_campaigns(args):
    """List campaigns, newest first."""
    return services.list_campaigns(args)


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
    services.apply_campaign_fields(campaign, data)
    hold_scheduled_mailings_of(campaign.id)
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
    return services.list_actions(campaign_id, args)


@campaigns.get("/<int:campaign_id>/letters")
@require_role(Role.ANALYST)
@campaigns.arguments(s.LetterQuerySchema, location="query")
@campaigns.response(200, page_schema(s.LetterSchema))
def list_letters(args, campaign_id):
    """List the campaign's letters with their delivery state (queued, sent, failed, held)."""
    get_or_404(Campaign, campaign_id, "campaign")
    return services.list_letters(campaign_id, args)


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
