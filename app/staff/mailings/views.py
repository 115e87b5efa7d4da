"""The mailings list and one mailing's page: its progress, previews and test sends."""

from __future__ import annotations

from flask import Response, abort, current_app, flash, redirect, render_template, request, url_for

from app.auth import audit
from app.auth.models import Role
from app.errors import DomainError
from app.extensions import db
from app.mailings.compose import checks, previews, services
from app.mailings.compose.schemas import STATUSES
from app.mailings.models import Mailing, MailingStatus, MailingVariant
from app.security import parse_id
from app.staff.access import actor, requires
from app.staff.forms import flatten_messages
from app.staff.mailings import blueprint
from app.staff.mailings.ab_summary import ab_summary
from app.staff.mailings.forms import TestSendForm
from app.supporters.models import Supporter
from app.supporters.services import find_by_email

PAGE_SIZE = 25
LIVE_STATUSES = (MailingStatus.SCHEDULED, MailingStatus.SENDING)
# Pages (their endpoints) the preview area's "Preview as" form may return to, for a draft;
# otherwise it returns to the mailing's page.
PREVIEW_PAGES = frozenset({"edit", "ab_test"})
# The rendered mail is staff-written HTML on the staff origin: no scripts, no same-origin
# access, and only our own pages may frame it (the app's default forbids all framing).
PREVIEW_HEADERS = {
    "Content-Security-Policy": "sandbox; frame-ancestors 'self'",
    "X-Frame-Options": "SAMEORIGIN",
}


@blueprint.get("/")
@requires(Role.ANALYST)
def index():
    status = request.args.get("status") or None
    problem = None
    if status is not None and status not in STATUSES:
        problem = f"There is no status {status[:40]!r}; showing every mailing."
        status = None
    after = parse_id(request.args.get("after", ""))
    mailings, next_after = checks.mailings_page(status, after, PAGE_SIZE)
    return render_template(
        "staff/mailings/index.html",
        mailings=mailings,
        sent=checks.sent_counts([m.id for m in mailings]),
        status=status,
        statuses=STATUSES,
        next_after=next_after,
        first_page=after is None,
        problem=problem,
    )


# --- one mailing: page, progress, preview, test ----------------------------------------------


@blueprint.get("/<int:mailing_id>")
@requires(Role.ANALYST)
def show(mailing_id: int):
    return _mailing_page(mailing_or_404(mailing_id), TestSendForm(formdata=None))


def _mailing_page(mailing: Mailing, test_form: TestSendForm, results=None, status: int = 200):
    variant = preview_variant(mailing)
    _offer_variants(test_form, mailing, variant)
    return render_template(
        "staff/mailings/show.html",
        mailing=mailing,
        report=services.status_report(mailing),
        live=mailing.status in LIVE_STATUSES,
        entries=checks.audit_entries(mailing.id),
        test_form=test_form,
        results=results,
        preview_as=preview_supporter(),
        preview_variant=variant,
        ab=ab_summary(mailing),
    ), status


def _offer_variants(form: TestSendForm, mailing: Mailing, shown: MailingVariant | None) -> None:
    form.variant.choices = [(v.label, f"Variant {v.label}") for v in mailing.variants]
    if shown is not None and not form.variant.raw_data:
        form.variant.data = shown.label  # the test send offers the variant being previewed


@blueprint.get("/<int:mailing_id>/progress")
@requires(Role.ANALYST)
def progress(mailing_id: int):
    mailing = mailing_or_404(mailing_id)
    live = mailing.status in LIVE_STATUSES
    panel = render_template(
        "staff/mailings/_progress.html",
        mailing=mailing,
        report=services.status_report(mailing),
        live=live,
    )
    if not live and request.headers.get("HX-Request") == "true":
        # Only a page shown while the send was live polls: its status and its Pause and
        # Cancel buttons are out of date now, so htmx reloads it whole (and it stops polling).
        return panel, {"HX-Refresh": "true"}
    return panel


@blueprint.get("/<int:mailing_id>/preview")
@requires(Role.ANALYST)
def preview(mailing_id: int):
    """The rendered mail for the preview iframes (framed by our pages only, sandboxed)."""
    mailing = mailing_or_404(mailing_id)
    supporter_id = parse_id(request.args.get("supporter_id", ""))
    supporter = db.session.get(Supporter, supporter_id) if supporter_id else None
    label = request.args.get("variant") or None
    variant = variant_of(mailing, label) if label else None
    if label and variant is None:
        abort(404, f"Mailing {mailing.id} has no variant {label[:5]!r}.")
    try:
        body, status = previews.preview(mailing, supporter, settings(), variant)["html"], 200
    except DomainError as exc:
        body = render_template("staff/mailings/_preview_problem.html", message=exc.message)
        status = exc.status
    response = Response(body, status=status, mimetype="text/html")
    response.headers.update(PREVIEW_HEADERS)
    return response


@blueprint.post("/<int:mailing_id>/preview-as")
@requires(Role.ANALYST)
def preview_as(mailing_id: int):
    mailing = mailing_or_404(mailing_id)
    email = request.form.get("email", "").strip()[:320]
    supporter = find_by_email(email) if email else None
    if email and supporter is None:
        flash(f"No supporter has the address {email!r}; showing the sample person.", "error")
    back = request.form.get("back", "")
    target = f".{back}" if back in PREVIEW_PAGES and mailing.is_editable else ".show"
    variant = variant_of(mailing, request.form.get("variant", ""))
    return redirect(
        url_for(
            target,
            mailing_id=mailing.id,
            supporter_id=supporter.id if supporter else None,
            variant=variant.label if variant else None,
        )
        + "#preview"
    )


@blueprint.post("/<int:mailing_id>/test")
@requires(Role.CAMPAIGNER)
def test_send(mailing_id: int):
    mailing = mailing_or_404(mailing_id)
    form = TestSendForm()
    if not form.validate_on_submit():
        return _mailing_page(mailing, form, status=422)
    variant = None
    if mailing.variants:
        variant = variant_of(mailing, form.variant.data or "")
        if variant is None:
            form.variant.errors = ["Choose one of the variants."]
            return _mailing_page(mailing, form, status=422)
    supporter = None
    as_email = (form.as_email.data or "").strip()[:320]
    if as_email:
        supporter = find_by_email(as_email)
        if supporter is None:
            form.as_email.errors = ["No supporter has this address."]
            return _mailing_page(mailing, form, status=422)
    addresses = (form.to.data or "").splitlines()
    try:
        results = previews.test_send(
            mailing, addresses, settings(), supporter=supporter, variant=variant
        )
    except DomainError as exc:
        form.to.errors = flatten_messages(exc.details.get("to") or []) or [exc.message]
        return _mailing_page(mailing, form, status=exc.status)
    sent = sum(r["ok"] for r in results)
    audit.record(
        actor(),
        "test_sent",
        subject_type="mailing",
        subject_id=mailing.id,
        detail=f"{sent} of {len(results)} test messages sent"
        + (f" (variant {variant.label})" if variant else ""),
    )
    db.session.commit()
    return _mailing_page(mailing, form, results=results)


# --- for every mailing page ------------------------------------------------------------------


def mailing_or_404(mailing_id: int, *, lock: bool = False) -> Mailing:
    # The lock (as in the API): two "send" clicks, or an edit racing a send, cannot both pass.
    mailing = db.session.get(Mailing, mailing_id, with_for_update=lock)
    if mailing is None:
        abort(404, f"No mailing with id {mailing_id}.")
    return mailing


def preview_supporter() -> Supporter | None:
    """The supporter the previews fill merge fields from (?supporter_id=), if any."""
    supporter_id = parse_id(request.args.get("supporter_id", ""))
    return db.session.get(Supporter, supporter_id) if supporter_id else None


def variant_of(mailing: Mailing, label: str) -> MailingVariant | None:
    return next((v for v in mailing.variants if v.label == label.strip().upper()), None)


def preview_variant(mailing: Mailing) -> MailingVariant | None:
    """The A/B variant the previews show (?variant=B); A when none or an unknown one is asked."""
    if not mailing.variants:
        return None
    return variant_of(mailing, request.args.get("variant", "")) or mailing.variants[0]


def settings():
    return current_app.config["CLARION"]
