"""The URLs in every mail: open pixel, tracked clicks, unsubscribe, preferences, web view.

Paths are fixed by app/links/urls.py. Supporters reach these pages from their inbox with no
login: the signed token in the path is their only credential, so pages never show more than
the token's own supporter, and a bad token gets a friendly page, never a traceback.

CSRF on POST /p/<token>: the token in the path is the secret an attacker would need, and the
form must repeat it in a hidden field; a browser's Origin (or Referer) header, when sent, must
name this site. POST /u/<token> takes RFC 8058 one-click requests from mail providers, which
carry no cookie, no Origin and no form token, so the path token alone authorises it; it can
only ever unsubscribe.
"""

from __future__ import annotations

import base64
import hmac
from datetime import datetime
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, redirect, render_template, request

from app.errors import DomainError
from app.extensions import db
from app.links.tokens import LinkClaims, Purpose, TokenError, TokenExpired, TokenService
from app.mailings.models import Mailing
from app.security import PRIVATE_PAGE_HEADERS, parse_id, private_page_headers
from app.supporters.models import SubscriptionStatus, Supporter
from app.tracking import buffer, consent, services
from app.tracking.problems import LinkProblem
from app.tracking.revocations import check_not_revoked

tracking = Blueprint("tracking", __name__)

# GIF89a, 1×1, one transparent colour: the smallest image every mail client shows.
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==")
PIXEL_HEADERS = {
    "Content-Type": "image/gif",
    # What private_page_headers would add, set here so the busiest response skips the lookups;
    # a stricter Cache-Control, as some proxies and mail clients ignore no-store alone.
    **PRIVATE_PAGE_HEADERS,
    "Cache-Control": "no-store, no-cache, must-revalidate, private, max-age=0",
    "Pragma": "no-cache",
    "Expires": "0",
}
# Unsubscribe links must keep working long after the mail was sent (never refuse an opt-out);
# preferences and web views may resubscribe or show personal data, so they age out.
PAGE_MAX_AGE = 400 * 24 * 3600


def token_service() -> TokenService:
    """Return the app's token service, built once per app (keys are derived once)."""
    service = current_app.extensions.get("clarion.tokens")
    if service is None:
        service = TokenService(current_app.config["CLARION"].secret_keys)
        current_app.extensions["clarion.tokens"] = service
    return service


def verified_claims(purpose: Purpose, token: str, max_age: int | None = None) -> LinkClaims:
    return verified_link(purpose, token, max_age)[0]


def verified_link(
    purpose: Purpose, token: str, max_age: int | None = None
) -> tuple[LinkClaims, datetime]:
    """Return the token's claims and signing time, or raise the friendly problem page."""
    try:
        return token_service().loads_with_timestamp(purpose, token, max_age=max_age)
    except TokenExpired as exc:
        raise LinkProblem(
            410,
            "This link has expired",
            "For your privacy this link only works for a while. Please use the link in a "
            "more recent email from us.",
        ) from exc
    except TokenError as exc:
        raise LinkProblem(
            400,
            "This link is not valid",
            "The link may have been cut short or changed when it was copied. Please open it "
            "again from the email, or copy the whole address.",
        ) from exc


def _supporter(claims: LinkClaims) -> Supporter:
    supporter = db.session.get(Supporter, claims.supporter_id)
    if supporter is None:
        raise LinkProblem(
            410,
            "Already removed",
            "We no longer hold your details, so you will not get any more emails from us.",
        )
    return supporter


@tracking.errorhandler(DomainError)
def link_problem_page(exc: DomainError):
    """Answer any domain error on a supporter's page (LinkProblem included) with the problem page."""
    return (
        render_template(
            "tracking/problem.html", title=exc.title, message=exc.message, status=exc.status
        ),
        exc.status,
    )


# Tokens are in these URLs.
tracking.after_request(private_page_headers)


def _may_record(purpose: Purpose, claims: LinkClaims, issued_at) -> bool:
    """Whether an open or click may be counted; never let the check break the response."""
    try:
        return check_not_revoked(purpose, claims, issued_at)
    except Exception:
        current_app.logger.exception("could not check link revocations")
        db.session.rollback()
        return True


def _user_agent() -> str:
    return request.headers.get("User-Agent", "")


@tracking.route("/o/<token>.gif", methods=["GET", "HEAD"])
def open_pixel(token: str):
    """Answer the pixel, always; record an open when the token is good."""
    try:
        claims, issued_at = token_service().loads_with_timestamp(Purpose.OPEN, token)
    except TokenError:
        claims = issued_at = None
    if claims is not None and _may_record(Purpose.OPEN, claims, issued_at):
        settings = current_app.config["CLARION"]
        user_agent, method = _user_agent(), request.method
        if not buffer.push_open(settings, claims, user_agent, method):
            try:
                services.record_open(claims, user_agent, method)
                db.session.commit()
            except Exception:
                # A broken image in someone's inbox helps nobody: log, forget the event.
                current_app.logger.exception("could not record an open")
                db.session.rollback()
    return Response(PIXEL, 200, PIXEL_HEADERS)


@tracking.route("/c/<token>/<int:position>", methods=["GET", "HEAD"])
def click(token: str, position: int):
    """Record a click and redirect to the stored URL of that mailing's link."""
    claims, issued_at = verified_link(Purpose.CLICK, token)
    link = services.find_link(claims.mailing_id, position)
    if link is None:
        raise LinkProblem(
            404, "Link not found", "This link does not lead anywhere. Please check the email."
        )
    settings = current_app.config["CLARION"]
    user_agent, method = _user_agent(), request.method
    # Classified when drained (app/tracking/buffer.py): the redirect needs only the link.
    # A withdrawn link still leads where it did, but counts nothing.
    if _may_record(Purpose.CLICK, claims, issued_at) and not buffer.push_click(
        settings, claims, position, user_agent, method
    ):
        try:
            services.record_click(claims, position, link, user_agent, method)
            db.session.commit()
        except Exception:
            current_app.logger.exception("could not record a click")
            db.session.rollback()
    if not link.url:  # the honeypot may have no target: a scanner gets nothing to follow
        return Response(status=204)
    # Only ever the stored URL: nothing from the request decides where people are sent.
    return redirect(link.url, 302)


@tracking.route("/u/<token>", methods=["GET", "POST"])
def unsubscribe(token: str):
    """Confirm page on GET; unsubscribe on the page's POST or an RFC 8058 one-click POST."""
    claims = verified_claims(Purpose.UNSUBSCRIBE, token, max_age=None)
    settings = current_app.config["CLARION"]
    if request.method == "POST" and "List-Unsubscribe" in request.form:
        # RFC 8058 one-click, sent by the mail provider's servers: effective at once, 2xx, no
        # redirect. An erased supporter gets a 200 too, since they will not be mailed either.
        supporter = db.session.get(Supporter, claims.supporter_id)
        if supporter is not None:
            consent.unsubscribe(
                supporter, claims.mailing_id, channel="one_click", user_agent=_user_agent()
            )
            db.session.commit()
        return Response("You are unsubscribed.\n", 200, {"Content-Type": "text/plain"})

    supporter = _supporter(claims)
    preferences_url = f"/p/{token_service().dumps(Purpose.PREFERENCES, *_ids(claims))}"
    if request.method == "GET":
        # Never unsubscribe on GET: link scanners follow every link in a mail.
        return render_template(
            "tracking/unsubscribe_confirm.html",
            organisation=settings.organisation_name,
            already=supporter.is_suppressed,
            preferences_url=preferences_url,
        )
    if request.form.get("confirm") != "1":
        raise LinkProblem(
            400, "Nothing was changed", "Please use the button on the unsubscribe page."
        )
    consent.unsubscribe(supporter, claims.mailing_id, channel="link", user_agent=_user_agent())
    db.session.commit()
    return render_template(
        "tracking/unsubscribed.html",
        organisation=settings.organisation_name,
        preferences_url=preferences_url,
    )


def _ids(claims: LinkClaims) -> tuple[int, int]:
    return claims.mailing_id, claims.supporter_id


def _same_site() -> bool:
    """Return False when the browser says the form was posted from another site."""
    sender = request.headers.get("Origin") or request.headers.get("Referer")
    if not sender:
        return True  # browsers may omit both; the token in path and form still has to match
    if sender == "null":
        return False  # an opaque origin: a sandboxed frame or a data: URL
    host = urlsplit(sender).netloc
    ours = {request.host, urlsplit(current_app.config["CLARION"].base_url).netloc}
    return host in ours


@tracking.route("/p/<token>", methods=["GET", "POST"])
def preferences(token: str):
    """Show the supporter's lists and subscription; apply the form on POST."""
    claims, issued_at = verified_link(Purpose.PREFERENCES, token, max_age=PAGE_MAX_AGE)
    check_not_revoked(Purpose.PREFERENCES, claims, issued_at)
    supporter = _supporter(claims)
    message, status = None, 200
    if request.method == "POST":
        form_token = request.form.get("token", "")
        if not _same_site() or not hmac.compare_digest(form_token.encode(), token.encode()):
            raise LinkProblem(
                400,
                "Nothing was changed",
                "The form did not come from this page. Please open the preferences link in "
                "your email again.",
            )
        keep = {parse_id(v) for v in request.form.getlist("keep")} - {None}
        try:
            message = consent.apply_preferences(
                supporter, claims.mailing_id, request.form.get("action", ""), keep
            )
            db.session.commit()
        except consent.PreferenceRefused as exc:
            db.session.rollback()
            message, status = str(exc), 409
    return (
        render_template(
            "tracking/preferences.html",
            organisation=current_app.config["CLARION"].organisation_name,
            supporter=supporter,
            lists=consent.supporter_lists(supporter),
            status=supporter.status.value,
            subscribed=supporter.status == SubscriptionStatus.SUBSCRIBED,
            can_resubscribe=supporter.status == SubscriptionStatus.UNSUBSCRIBED,
            token=token,
            message=message,
        ),
        status,
    )


# The mail's own HTML, from our origin: no script, no forms, no framing.
VIEW_CSP = (
    "default-src 'none'; img-src * data:; style-src 'unsafe-inline'; font-src * data:; "
    "form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)


@tracking.get("/v/<token>")
def view_in_browser(token: str):
    """Show the mail as its recipient got it; not counted as an open."""
    claims, issued_at = verified_link(Purpose.VIEW, token, max_age=PAGE_MAX_AGE)
    check_not_revoked(Purpose.VIEW, claims, issued_at)
    mailing = db.session.get(Mailing, claims.mailing_id)
    if mailing is None or not mailing.frozen_html:
        raise LinkProblem(404, "Email not found", "This email is no longer available.")
    supporter = _supporter(claims)
    html = consent.render_for_browser(
        mailing, supporter, current_app.config["CLARION"], token_service()
    )
    return Response(
        html,
        200,
        {"Content-Type": "text/html; charset=utf-8", "Content-Security-Policy": VIEW_CSP},
    )


def register_tracking(app) -> None:
    app.register_blueprint(tracking)
