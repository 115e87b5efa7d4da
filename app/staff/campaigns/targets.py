"""A campaign's targets: add, edit and remove the people its letters are addressed to."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from marshmallow import ValidationError

from app.auth.models import Role
from app.campaigns import schemas as s
from app.campaigns import targets
from app.campaigns.models import Campaign
from app.errors import Conflict, Invalid
from app.extensions import db
from app.staff.access import requires
from app.staff.campaigns import blueprint
from app.staff.campaigns.forms import (
    TARGET_FIELDS,
    TargetFields,
    show_campaign_errors,
    target_payload,
)
from app.staff.campaigns.views import campaign_or_404, refuse, target_or_404


@blueprint.route("/<int:campaign_id>/targets/new", methods=["GET", "POST"])
@requires(Role.CAMPAIGNER)
def new_target(campaign_id: int):
    campaign = campaign_or_404(campaign_id)
    return _target_form(campaign, None)


@blueprint.route("/<int:campaign_id>/targets/<int:target_id>/edit", methods=["GET", "POST"])
@requires(Role.CAMPAIGNER)
def edit_target(campaign_id: int, target_id: int):
    campaign = campaign_or_404(campaign_id)
    return _target_form(campaign, target_or_404(campaign, target_id))


def _target_form(campaign: Campaign, target):
    context = {"campaign": campaign, "target": target}
    if request.method == "GET":
        form = TargetFields(data={k: getattr(target, k) for k in TARGET_FIELDS} if target else {})
        return render_template("staff/campaigns/target.html", form=form, **context)
    form = TargetFields(request.form)
    try:
        data = s.TargetSchema().load(target_payload(request.form))
        if target is None:
            targets.add_target(campaign, data)
        else:
            targets.update_target(target, data)
    except ValidationError as exc:
        show_campaign_errors(form, exc.messages)
        return refuse("staff/campaigns/target.html", form, **context)
    except Invalid as exc:
        db.session.rollback()
        show_campaign_errors(form, exc.details)
        return refuse("staff/campaigns/target.html", form, **context)
    db.session.commit()
    flash("Target saved.", "success")
    return redirect(url_for(".show", campaign_id=campaign.id), 303)


@blueprint.post("/<int:campaign_id>/targets/<int:target_id>/remove")
@requires(Role.CAMPAIGNER)
def remove_target(campaign_id: int, target_id: int):
    campaign = campaign_or_404(campaign_id)
    target = target_or_404(campaign, target_id)
    try:
        targets.remove_target(campaign, target)
    except Conflict as exc:
        db.session.rollback()
        flash(exc.message, "error")
    else:
        db.session.commit()
        flash("Target removed.", "success")
    return redirect(url_for(".show", campaign_id=campaign_id), 303)
