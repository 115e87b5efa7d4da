"""The supporter-facing campaign pages: the action link in every mail, and the public page.

GET never acts: mail scanners follow every link, so a page view only shows the form and the one
POST button records the action. CSRF: the form carries a value signed (salt "csrf") over the
path's token or slug, so a form posted from another site, without that value, changes nothing;
no cookie session is needed.
"""

from __future__ import annotations

import hmac

from flask import Blueprint, current_app, redirect, render_template, request
from flask_limiter import RateLimitExceeded
from itsdangerous import BadData, URLSafeSerializer

from app.campaigns import confirmations, guards, letter_text, services
from app.campaigns.models import Campaign, CampaignKind, CampaignStatus
from app.errors import DomainError
from app.extensions import db, limiter
from app.links.tokens import Purpose, TokenError
from app.mailings.models import Mailing
from app.security import private_page_headers
from app.supporters.models import Supporter
from app.tracking import revocations
from app.tracking.problems import LinkProblem
from app.tracking.views import link_problem_page, token_service, verified_link

campaigns_pages = Blueprint("campaign_pages", __name__)
# LinkProblem, ConfirmProblem and any other domain error: the supporters' problem page.
campaigns_pages.register_error_handler(DomainError, link_problem_page)


@campaigns_pages.errorhandler(429)
def _too_many_page(exc):
    retry_after = exc.limit.limit.get_expiry() if isinstance(exc, RateLimitExceeded) else 60
    page = render_template("campaigns/too_many.html", minutes=max(1, round(retry_after / 60)))
    # Flask-Limiter raises Retry-After to the real reset time when it knows it.
    return page, 429, {"Retry-After": str(retry_after)}


def _client_network() -> str:
    return guards.client_network(request.remote_addr)


def _campaign_of_request() -> str:
    """Key the per-campaign limit: the slug's campaign, or the "Not Jane?" link's campaign."""
    if "slug" in (request.view_args or {}):
        return f"campaign:{services.campaign_id_by_slug(request.view_args['slug'])}"
    try:
        claims = token_service().loads(Purpose.ACTION, (request.view_args or {}).get("token", ""))
    except TokenError:
        return "campaign:None"  # the view answers 400 anyway
    mailing = db.session.get(Mailing, claims.mailing_id)
    return f"campaign:{mailing.campaign_id if mailing else None}"


def _proven_by_link() -> bool:
    # A supporter acting through their own signed link: the link proves the address.
    return "token" in (request.view_args or {}) and request.values.get("not_me") != "1"


# One budget per client network across every public form; one per campaign for the actions
# that are not proven by a signed link (what a flood of typed addresses would use up).
per_client_limit = limiter.shared_limit(
    lambda: _settings().public_form_rate_per_ip,
    scope="public-forms-client",
    key_func=_client_network,
    methods=["POST"],
)
per_campaign_limit = limiter.shared_limit(
    lambda: _settings().public_form_rate_per_campaign,
    scope="public-forms-campaign",
    key_func=_campaign_of_request,
    methods=["POST"],
    exempt_when=_proven_by_link,
)


# Action tokens are in these URLs.
campaigns_pages.after_request(private_page_headers)


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


def page_vars(
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
        "letter": (values or {}).get("letter") or letter_text.model_letter(campaign, name, town),
        "name": name,
        "form_url": form_url,
        "csrf": csrf,
        "not_me": not_me,
        "not_me_url": not_me_url,
        "errors": errors or {},
        "values": values or {},
        "closes_on": services.deadline_passed_on(campaign),
        "started": guards.started_stamp(_settings().secret_keys, form_url) if not_me else "",
        "honeypot_field": guards.HONEYPOT_FIELD,
    }


def _hold_for_form_details(
    campaign,
    values: dict,
    *,
    form_url: str,
    consent_channel: str,
    consent_detail: str,
    action_channel: str,
    mailing_id: int | None = None,
):
    """Hold the action for the address the form names until its owner confirms it by mail.

    Raises guards.FormRefused for a submission that looks automated, CampaignError for details
    to ask again. Answers the same page whether or not the address is a supporter's.
    """
    settings = _settings()
    guards.check_form(
        settings.secret_keys,
        form_url,
        stamp=request.form.get(guards.STARTED_FIELD),
        honeypot=request.form.get(guards.HONEYPOT_FIELD),
        min_seconds=settings.public_form_min_seconds,
    )
    email, _ = confirmations.hold_action(
        campaign,
        name=values["name"],
        email=values["email"],
        town=values["town"],
        consent=request.form.get("consent") == "1",
        letter_body=_edited_letter(campaign, values["letter"]),
        channel=action_channel,
        consent_channel=consent_channel,
        consent_detail=consent_detail,
        client_hash=guards.client_hash(settings.secret_keys[0], request.remote_addr),
        mailing_id=mailing_id,
        settings=settings,
    )
    db.session.commit()
    return render_template(
        "campaigns/check_inbox.html", campaign=campaign, masked=confirmations.masked_email(email)
    )


def _edited_letter(campaign: Campaign, text: str | None) -> str | None:
    """Return the supporter's letter, or None when they left the unsigned model as it was."""
    if not text or text.strip() == letter_text.model_letter(campaign, "", "").strip():
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
@per_client_limit
@per_campaign_limit
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
    me = {"name": supporter.full_name, "town": letter_text.supporter_town(supporter)}
    form_url = f"/a/{token}" + ("?not_me=1" if not_me else "")

    def page(status: int = 200, errors=None, values=None):
        return _page(
            page_vars(
                campaign,
                name=(values or {}).get("name", "") if not_me else me["name"],
                town=(values or {}).get("town", "") if not_me else me["town"],
                form_url=form_url,
                csrf=csrf_value(token),
                not_me=not_me,
                not_me_url=f"/a/{token}?not_me=1",
                errors=errors,
                values=values,
            ),
            status,
        )

    if request.method == "GET" and not not_me and services.find_action(campaign, supporter):
        return _done(campaign, already=True, who=supporter.first_name or "")
    if request.method == "GET":
        return page()
    _check_csrf(token)
    values = {k: request.form.get(k, "") for k in ("name", "email", "town", "letter")}
    try:
        if not_me:
            # Someone else at Jane's keyboard (a forwarded mail): never Jane, and not the
            # address they typed either until its owner confirms.
            return _hold_for_form_details(
                campaign,
                values,
                form_url=form_url,
                consent_channel="action_not_me",
                consent_detail=(
                    f"action page for campaign {campaign.id} via mailing {claims.mailing_id}"
                ),
                action_channel="not_me",
                mailing_id=claims.mailing_id,
            )
        action, created = services.record_action(
            campaign,
            supporter,
            channel="email",
            mailing_id=claims.mailing_id,
            letter_body=values["letter"],
            user_agent=request.headers.get("User-Agent"),
            settings=_settings(),
        )
    except guards.FormRefused as exc:
        return page(422, {"form": [exc.message]}, values)
    except services.CampaignError as exc:
        db.session.rollback()
        return page(422, exc.details, values if not_me else {"letter": values["letter"]})
    db.session.commit()
    return _done(campaign, already=not created, who=supporter.first_name or "")


@campaigns_pages.route("/campaigns/<slug>", methods=["GET", "POST"])
@per_client_limit
@per_campaign_limit
def public_page(slug: str):
    """Anyone may act with their name, email, town and consent, once the address confirms."""
    campaign = services.campaign_by_slug(slug)
    if campaign is None or campaign.status == CampaignStatus.DRAFT:
        raise LinkProblem(404, "Campaign not found", "There is no campaign at this address.")
    if not campaign.is_open():
        return _closed_page(campaign)
    form_url = f"/campaigns/{slug}"
    csrf = csrf_value(f"campaign:{slug}")

    def page(status: int = 200, errors=None, values=None):
        values = values or {}
        return _page(
            page_vars(
                campaign,
                name=values.get("name", ""),
                town=values.get("town", ""),
                form_url=form_url,
                csrf=csrf,
                not_me=True,
                errors=errors,
                values=values,
            ),
            status,
        )

    if request.method == "GET":
        return page()
    _check_csrf(f"campaign:{slug}")
    values = {k: request.form.get(k, "") for k in ("name", "email", "town", "letter")}
    try:
        return _hold_for_form_details(
            campaign,
            values,
            form_url=form_url,
            consent_channel="campaign_page",
            consent_detail=f"public page of campaign {campaign.id}",
            action_channel="public",
        )
    except guards.FormRefused as exc:
        return page(422, {"form": [exc.message]}, values)
    except services.CampaignError as exc:
        db.session.rollback()
        return page(422, exc.details, values)


@campaigns_pages.route("/confirm/<token>", methods=["GET", "POST"])
@per_client_limit
def confirm_page(token: str):
    """Show the held action with one button (scanners only GET); the POST records it."""
    settings = _settings()
    pending = confirmations.pending_for_token(token, settings, lock=request.method == "POST")
    campaign = db.session.get(Campaign, pending.campaign_id)
    if not campaign.is_open():
        return _closed_page(campaign)
    if request.method == "GET":
        return render_template(
            "campaigns/confirm.html",
            campaign=campaign,
            pending=pending,
            letter=confirmations.letter_to_confirm(pending, campaign),
            csrf=csrf_value(f"confirm:{pending.id}"),
        )
    _check_csrf(f"confirm:{pending.id}")
    try:
        supporter, _, created = confirmations.confirm_action(pending, settings)
    except services.CampaignError as exc:
        db.session.rollback()
        raise LinkProblem(
            400, "We could not record this", " ".join(sum(exc.details.values(), []))
        ) from exc
    db.session.commit()
    return _done(campaign, already=not created, who=supporter.first_name or "")


def register_campaign_pages(app) -> None:
    app.register_blueprint(campaigns_pages)
