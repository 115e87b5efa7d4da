"""The supporter-facing campaign pages: the action link in every mail, and the public page.

GET never acts: mail scanners follow every link, so a page view only shows the form and the one
POST button records the action. CSRF: the form carries a value signed (salt "csrf") over the
path's token or slug, so a form posted from another site, without that value, changes nothing;
no cookie session is needed.
"""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, current_app, redirect, render_template, request
from itsdangerous import BadData, URLSafeSerializer
from sqlalchemy import select

from app.campaigns import services
from app.campaigns.models import Campaign, CampaignKind, CampaignStatus
from app.extensions import db
from app.mailings.models import Mailing
from app.supporters.models import Supporter
from app.tracking import revocations
from app.tracking.tokens import Purpose
from app.tracking.views import LinkProblem, link_problem_page, verified_link

campaigns_pages = Blueprint("campaign_pages", __name__)
campaigns_pages.register_error_handler(LinkProblem, link_problem_page)


@campaigns_pages.after_request
def _private(response: Response) -> Response:
    # Action tokens are in these URLs: keep them out of caches, search engines and Referers.
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("X-Robots-Tag", "noindex, nofollow")
    return response


def _csrf() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["CLARION"].secret_keys[0], salt="clarion.csrf")


def csrf_value(bound_to: str) -> str:
    return _csrf().dumps(bound_to)


def _check_csrf(bound_to: str) -> None:
    try:
        ok = hmac.compare_digest(str(_csrf().loads(request.form.get("csrf", ""))), bound_to)
    except BadData:
        ok = False
    if not ok:
        raise LinkProblem(
            400,
            "Nothing was sent",
            "The form did not come from this page. Please open the link in your email again.",
        )


def _settings():
    return current_app.config["CLARION"]


def _closed_page(campaign: Campaign):
    return render_template(
        "campaigns/closed.html",
        campaign=campaign,
        closed_on=services.deadline_passed_on(campaign),
        others=[c for c in services.open_campaigns() if c.id != campaign.id],
    )


def _campaign_for_mailing(mailing_id: int) -> Campaign:
    mailing = db.session.get(Mailing, mailing_id)
    campaign = (
        db.session.get(Campaign, mailing.campaign_id) if mailing and mailing.campaign_id else None
    )
    if campaign is None or campaign.status == CampaignStatus.DRAFT:
        raise LinkProblem(
            404,
            "No action here",
            "This email does not have an action to take. Thank you for reading it.",
        )
    return campaign


def _page(template_vars: dict, status: int = 200):
    return render_template("campaigns/action.html", **template_vars), status


def _view_vars(
    campaign: Campaign,
    *,
    name: str,
    town: str,
    form_url: str,
    csrf: str,
    not_me: bool = False,
    not_me_url: str | None = None,
    errors=None,
    values=None,
):
    return {
        "campaign": campaign,
        "summary": services.sanitise_html(campaign.summary),
        "letter": (values or {}).get("letter") or services.model_letter(campaign, name, town),
        "name": name,
        "form_url": form_url,
        "csrf": csrf,
        "not_me": not_me,
        "not_me_url": not_me_url,
        "errors": errors or {},
        "values": values or {},
        "closes_on": services.deadline_passed_on(campaign),
    }


def _act_for_form_details(
    campaign, values: dict, *, consent_channel: str, consent_detail: str, action_channel: str
):
    """Record the action for the person the form names (found or created, consent captured)."""
    actor = services.supporter_for_details(
        values["name"],
        values["email"],
        values["town"],
        consent=request.form.get("consent") == "1",
        channel=consent_channel,
        detail=consent_detail,
    )
    action, created = services.record_action(
        campaign,
        actor,
        channel=action_channel,
        letter_body=_edited_letter(campaign, values["letter"]),
        settings=_settings(),
    )
    return actor, action, created


def _edited_letter(campaign: Campaign, text: str | None) -> str | None:
    """Return the supporter's letter, or None when they left the unsigned model as it was."""
    if not text or text.strip() == services.model_letter(campaign, "", "").strip():
        return None  # the service signs the model letter with the name they just gave
    return text


def _done(campaign: Campaign, *, already: bool, who: str):
    if campaign.kind == CampaignKind.CLICK and campaign.external_url:
        return redirect(campaign.external_url, 303)
    return render_template(
        "campaigns/done.html",
        campaign=campaign,
        already=already,
        who=who,
        thank_you=services.sanitise_html(campaign.thank_you),
    )


@campaigns_pages.route("/a/<token>", methods=["GET", "POST"])
def action_page(token: str):
    """Show the action for the mail's campaign; record it only on the form's POST."""
    claims, issued_at = verified_link(Purpose.ACTION, token)
    revocations.check_not_revoked(Purpose.ACTION, claims, issued_at)
    campaign = _campaign_for_mailing(claims.mailing_id)
    supporter = db.session.get(Supporter, claims.supporter_id)
    if supporter is None:
        raise LinkProblem(
            410,
            "Already removed",
            "We no longer hold your details, so this link cannot act for you.",
        )
    if not campaign.is_open():
        return _closed_page(campaign)
    not_me = request.values.get("not_me") == "1"
    me = {"name": supporter.full_name, "town": services.supporter_town(supporter)}
    csrf = csrf_value(token)
    if request.method == "GET" and not not_me and services.find_action(campaign, supporter):
        return _done(campaign, already=True, who=supporter.first_name or "")
    if request.method == "GET":
        return _page(
            _view_vars(
                campaign,
                name="" if not_me else me["name"],
                town="" if not_me else me["town"],
                form_url=f"/a/{token}" + ("?not_me=1" if not_me else ""),
                csrf=csrf,
                not_me=not_me,
                not_me_url=f"/a/{token}?not_me=1",
            )
        )
    _check_csrf(token)
    values = {k: request.form.get(k, "") for k in ("name", "email", "town", "letter")}
    try:
        if not_me:
            # Someone else at Jane's keyboard (a forwarded mail): record it for them, never Jane.
            actor, action, created = _act_for_form_details(
                campaign,
                values,
                consent_channel="action_not_me",
                consent_detail=(
                    f"action page for campaign {campaign.id} via mailing {claims.mailing_id}"
                ),
                action_channel="not_me",
            )
        else:
            actor = supporter
            action, created = services.record_action(
                campaign,
                supporter,
                channel="email",
                mailing_id=claims.mailing_id,
                letter_body=values["letter"],
                user_agent=request.headers.get("User-Agent"),
                settings=_settings(),
            )
    except services.CampaignError as exc:
        db.session.rollback()
        shown = values if not_me else {"letter": values["letter"]}
        return _page(
            _view_vars(
                campaign,
                name=values["name"] if not_me else me["name"],
                town=values["town"] if not_me else me["town"],
                form_url=f"/a/{token}" + ("?not_me=1" if not_me else ""),
                csrf=csrf,
                not_me=not_me,
                not_me_url=f"/a/{token}?not_me=1",
                errors=exc.details,
                values=shown,
            ),
            422,
        )
    db.session.commit()
    return _done(campaign, already=not created, who=actor.first_name or "")


@campaigns_pages.route("/campaigns/<slug>", methods=["GET", "POST"])
def public_page(slug: str):
    """Anyone may act with their name, email, town and consent."""
    campaign = db.session.scalar(select(Campaign).where(Campaign.slug == slug))
    if campaign is None or campaign.status == CampaignStatus.DRAFT:
        raise LinkProblem(404, "Campaign not found", "There is no campaign at this address.")
    if not campaign.is_open():
        return _closed_page(campaign)
    csrf = csrf_value(f"campaign:{slug}")
    if request.method == "GET":
        return _page(
            _view_vars(
                campaign, name="", town="", form_url=f"/campaigns/{slug}", csrf=csrf, not_me=True
            )
        )
    _check_csrf(f"campaign:{slug}")
    values = {k: request.form.get(k, "") for k in ("name", "email", "town", "letter")}
    try:
        supporter, action, created = _act_for_form_details(
            campaign,
            values,
            consent_channel="campaign_page",
            consent_detail=f"public page of campaign {campaign.id}",
            action_channel="public",
        )
    except services.CampaignError as exc:
        db.session.rollback()
        return _page(
            _view_vars(
                campaign,
                name=values["name"],
                town=values["town"],
                form_url=f"/campaigns/{slug}",
                csrf=csrf,
                not_me=True,
                errors=exc.details,
                values=values,
            ),
            422,
        )
    db.session.commit()
    return _done(campaign, already=not created, who=supporter.first_name or "")


def register_campaign_pages(app) -> None:
    app.register_blueprint(campaigns_pages)
