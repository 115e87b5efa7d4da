"""Staff pages: Mailings — list, compose, preview, test, check, send and watch a send.

Every change goes through the same services the API calls (app/mailings/api.py), so a rule
such as "only a draft can be edited" or "the campaign must be open" is written once.
"""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from flask import (
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_wtf import FlaskForm
from wtforms import (
    FloatField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    widgets,
)
from wtforms.validators import Length, Optional

from app.auth import audit
from app.auth.models import Role
from app.campaigns.services import all_campaigns
from app.errors import DomainError
from app.extensions import db
from app.mailings.compose import checks, previews, services
from app.mailings.compose.schemas import MAX_TEST_ADDRESSES, STATUSES
from app.mailings.delivery import control
from app.mailings.delivery.launch import known_custom_fields
from app.mailings.models import Mailing, MailingStatus
from app.security import parse_id
from app.staff.access import actor, requires, staff_blueprint
from app.supporters.models import Supporter
from app.supporters.services import find_by_email
from mailers.merge import FREEZE_FIELDS, PER_RECIPIENT_URLS, STANDARD_FIELDS, html_env

blueprint = staff_blueprint("staff_mailings", __name__, url_prefix="/staff/mailings")

PAGE_SIZE = 25
LIVE_STATUSES = (MailingStatus.SCHEDULED, MailingStatus.SENDING)
AUDIENCE_KEYS = (
    "include_lists",
    "exclude_lists",
    "include_tags",
    "exclude_tags",
    "segments",
    "exclude_segments",
)
# The rendered mail is staff-written HTML on the staff origin: no scripts, no same-origin
# access, and only our own pages may frame it (the app's default forbids all framing).
PREVIEW_HEADERS = {
    "Content-Security-Policy": "sandbox; frame-ancestors 'self'",
    "X-Frame-Options": "SAMEORIGIN",
}
_LINE = re.compile(r"line (\d+): ")


# --- forms -----------------------------------------------------------------------------------


class CheckboxesField(SelectMultipleField):
    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


def _ids_field(label: str) -> CheckboxesField:
    # The service says which ids exist ("No list with id 7."): one rule, not WTForms' choices.
    return CheckboxesField(label, coerce=int, validate_choice=False)


def _campaign_id(value):
    if value in (None, "", "None"):
        return None
    return int(value)


class MailingForm(FlaskForm):
    name = StringField("Name (staff only)", validators=[Length(max=200)])
    subject = StringField("Subject", validators=[Length(max=998)])
    preheader = StringField("Preheader (the preview line after the subject)")
    from_name = StringField("From name")
    from_email = StringField("From address")
    reply_to = StringField("Reply-to address")
    layout = SelectField("Layout")
    body_mjml = TextAreaField("Body (MJML)", render_kw={"class": "code", "rows": 18})
    body_text = TextAreaField(
        "Plain-text part (optional: made from the HTML when empty)",
        render_kw={"class": "code", "rows": 6},
    )
    campaign_id = SelectField("Campaign its action links open", coerce=_campaign_id)
    send_rate = FloatField("Send rate (messages per second)", validators=[Optional()])
    include_lists = _ids_field("Members of any of these lists")
    include_tags = _ids_field("Supporters with any of these tags")
    segments = _ids_field("Plus these saved segments")
    exclude_lists = _ids_field("Except members of these lists")
    exclude_tags = _ids_field("Except supporters with these tags")
    exclude_segments = _ids_field("Except supporters in these saved segments")

    def set_choices(self) -> None:
        choices = checks.audience_choices()
        for key in ("include_lists", "exclude_lists"):
            self[key].choices = choices["lists"]
        for key in ("include_tags", "exclude_tags"):
            self[key].choices = choices["tags"]
        self.segments.choices = self.exclude_segments.choices = choices["segments"]
        self.layout.choices = [("", "No layout: the body below is the whole mail")] + [
            (name, name) for name in services.available_layouts()
        ]
        self.campaign_id.choices = [(None, "No campaign")] + [
            (c.id, f"{c.title} ({c.status.value})") for c in all_campaigns()
        ]

    def audience(self) -> dict:
        return {key: list(self[key].data or []) for key in AUDIENCE_KEYS}

    def mailing_data(self) -> dict:
        data = {
            key: self[key].data or ""
            for key in ("name", "subject", "preheader", "from_name", "from_email", "reply_to")
        }
        data |= {
            "layout": self.layout.data or None,
            "body_mjml": self.body_mjml.data or None,
            "body_text": self.body_text.data or None,
            "campaign_id": self.campaign_id.data,
            "send_rate": self.send_rate.data,
            "audience": self.audience(),
        }
        return data


class TestSendForm(FlaskForm):
    to = TextAreaField(
        f"Send a test to (one address per line, at most {MAX_TEST_ADDRESSES})",
        render_kw={"rows": 3},
    )
    as_email = StringField("Fill merge fields from the supporter with this email (optional)")


class SendForm(FlaskForm):
    at = StringField(
        "Send at (leave empty to send now)",
        render_kw={"type": "datetime-local"},
    )
    timezone = SelectField("Time zone", default="UTC")


# --- list ------------------------------------------------------------------------------------


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


# --- compose ---------------------------------------------------------------------------------


@blueprint.route("/new", methods=["GET", "POST"])
@requires(Role.CAMPAIGNER)
def new():
    form = MailingForm()
    return _editor(form, None)


@blueprint.route("/<int:mailing_id>/edit", methods=["GET", "POST"])
@requires(Role.CAMPAIGNER)
def edit(mailing_id: int):
    mailing = _mailing(mailing_id, lock=request.method == "POST")
    if not mailing.is_editable:
        flash(f"This mailing is {mailing.status.value}: only a draft can be edited.", "error")
        return redirect(url_for(".show", mailing_id=mailing.id))
    form = MailingForm(obj=mailing) if request.method == "GET" else MailingForm()
    if request.method == "GET":
        for key in AUDIENCE_KEYS:
            form[key].data = (mailing.audience or {}).get(key, [])
    return _editor(form, mailing)


def _editor(form: MailingForm, mailing: Mailing | None):
    form.set_choices()
    count = count_problem = None
    status = 200
    if request.method == "POST" and form.validate_on_submit():
        if request.form.get("action") == "count":
            count, count_problem = _count(form.audience())
        else:
            try:
                if mailing is None:
                    mailing = services.create_mailing(form.mailing_data())
                else:
                    services.update_mailing(mailing, form.mailing_data())
            except DomainError as exc:
                # The services check before they change anything: a refusal leaves nothing
                # to undo (and the session ends with the request).
                _put_errors(form, exc)
                status = exc.status
            else:
                db.session.commit()
                flash("Saved. The previews below show the saved version.", "success")
                return redirect(url_for(".edit", mailing_id=mailing.id))
    elif request.method == "POST":
        status = 422
    return render_template(
        "staff/mailings/edit.html",
        form=form,
        mailing=mailing,
        count=count,
        count_problem=count_problem,
        body_errors=_line_errors(form.body_mjml.errors, form.body_mjml.data),
        merge_fields=_merge_fields(),
        merge_filters=sorted(html_env.filters),
        preview_as=_preview_supporter(),
    ), status


@blueprint.post("/audience-count")
@requires(Role.CAMPAIGNER)
def audience_count():
    """The live recipient count beside the audience picker (htmx, on every change)."""
    form = MailingForm()
    form.set_choices()
    form.validate()
    # Only the audience matters here: a half-typed subject must not stop the count.
    problems = [m for key in AUDIENCE_KEYS for m in form[key].errors]
    count, problem = (None, problems[0]) if problems else _count(form.audience())
    return render_template(
        "staff/mailings/_audience_count.html", count=count, count_problem=problem
    )


def _count(audience: dict) -> tuple[int | None, str | None]:
    try:
        return checks.count_audience(audience), None
    except DomainError as exc:
        return None, exc.message


def _put_errors(form: FlaskForm, exc: DomainError) -> None:
    placed = False
    for key, messages in (exc.details or {}).items():
        if key == "audience" and isinstance(messages, dict):
            for part, part_messages in messages.items():
                target = form[part] if part in AUDIENCE_KEYS else form.include_lists
                target.errors = [*target.errors, *_flat(part_messages)]
                placed = True
        elif key in form:
            form[key].errors = [*form[key].errors, *_flat(messages)]
            placed = True
    if not placed:
        form.form_errors.append(exc.message)


def _flat(messages) -> list[str]:
    if isinstance(messages, str):
        return [messages]
    if isinstance(messages, dict):
        return [m for value in messages.values() for m in _flat(value)]
    return [m for value in messages for m in _flat(value)]


def _line_errors(errors, source: str | None) -> list[dict]:
    """Pair each "line N: …" error with the line of the body it points at."""
    lines = (source or "").splitlines()
    paired = []
    for error in errors:
        match = _LINE.match(error)
        number = int(match.group(1)) if match else None
        paired.append(
            {
                "line": number,
                "message": error[match.end() :] if match else error,
                "source": lines[number - 1] if number and number <= len(lines) else None,
            }
        )
    return paired


def _merge_fields() -> dict[str, list[str]]:
    return {
        "About the supporter": sorted(STANDARD_FIELDS),
        "Their own links": sorted(PER_RECIPIENT_URLS),
        "Your organisation": sorted(FREEZE_FIELDS),
        "Custom fields": sorted(known_custom_fields()),
    }


# --- one mailing: page, progress, preview, test ----------------------------------------------


@blueprint.get("/<int:mailing_id>")
@requires(Role.ANALYST)
def show(mailing_id: int):
    return _mailing_page(_mailing(mailing_id), TestSendForm(formdata=None))


def _mailing_page(mailing: Mailing, test_form: TestSendForm, results=None, status: int = 200):
    return render_template(
        "staff/mailings/show.html",
        mailing=mailing,
        report=services.status_report(mailing),
        live=mailing.status in LIVE_STATUSES,
        entries=checks.audit_entries(mailing.id),
        test_form=test_form,
        results=results,
        preview_as=_preview_supporter(),
    ), status


@blueprint.get("/<int:mailing_id>/progress")
@requires(Role.ANALYST)
def progress(mailing_id: int):
    mailing = _mailing(mailing_id)
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
    mailing = _mailing(mailing_id)
    supporter_id = parse_id(request.args.get("supporter_id", ""))
    supporter = db.session.get(Supporter, supporter_id) if supporter_id else None
    try:
        body, status = previews.preview(mailing, supporter, _settings())["html"], 200
    except DomainError as exc:
        body = render_template("staff/mailings/_preview_problem.html", message=exc.message)
        status = exc.status
    response = Response(body, status=status, mimetype="text/html")
    response.headers.update(PREVIEW_HEADERS)
    return response


@blueprint.post("/<int:mailing_id>/preview-as")
@requires(Role.ANALYST)
def preview_as(mailing_id: int):
    mailing = _mailing(mailing_id)
    email = request.form.get("email", "").strip()[:320]
    supporter = find_by_email(email) if email else None
    if email and supporter is None:
        flash(f"No supporter has the address {email!r}; showing the sample person.", "error")
    back = request.form.get("back") == "edit" and mailing.is_editable
    target = ".edit" if back else ".show"
    return redirect(
        url_for(target, mailing_id=mailing.id, supporter_id=supporter.id if supporter else None)
        + "#preview"
    )


def _preview_supporter() -> Supporter | None:
    supporter_id = parse_id(request.args.get("supporter_id", ""))
    return db.session.get(Supporter, supporter_id) if supporter_id else None


@blueprint.post("/<int:mailing_id>/test")
@requires(Role.CAMPAIGNER)
def test_send(mailing_id: int):
    mailing = _mailing(mailing_id)
    form = TestSendForm()
    if not form.validate_on_submit():
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
        results = previews.test_send(mailing, addresses, _settings(), supporter=supporter)
    except DomainError as exc:
        form.to.errors = _flat(exc.details.get("to") or []) or [exc.message]
        return _mailing_page(mailing, form, status=exc.status)
    sent = sum(r["ok"] for r in results)
    audit.record(
        actor(),
        "test_sent",
        subject_type="mailing",
        subject_id=mailing.id,
        detail=f"{sent} of {len(results)} test messages sent",
    )
    db.session.commit()
    return _mailing_page(mailing, form, results=results)


# --- check and send --------------------------------------------------------------------------


@blueprint.get("/<int:mailing_id>/check")
@requires(Role.ANALYST)
def check(mailing_id: int):
    mailing = _mailing(mailing_id)
    return _check_page(mailing, _send_form(formdata=None))


def _send_form(**kwargs) -> SendForm:
    form = SendForm(**kwargs)
    form.timezone.choices = sorted(available_timezones())
    return form


def _check_page(mailing: Mailing, form: SendForm, problem: str | None = None, status: int = 200):
    return render_template(
        "staff/mailings/check.html",
        mailing=mailing,
        check=checks.pre_send_check(mailing, _settings()) if mailing.is_editable else None,
        form=form,
        problem=problem,
    ), status


@blueprint.post("/<int:mailing_id>/send")
@requires(Role.CAMPAIGNER)
def send(mailing_id: int):
    mailing = _mailing(mailing_id, lock=True)
    form = _send_form()
    if not form.validate_on_submit():
        return _check_page(mailing, form, status=422)
    try:
        at = _send_time(form)
    except ValueError as exc:
        form.at.errors = [str(exc)]
        return _check_page(mailing, form, status=422)
    try:
        services.send_mailing(mailing, _settings(), at=at)
    except DomainError as exc:  # refused before anything changed, as in the editor
        return _check_page(mailing, form, problem=exc.message, status=exc.status)
    later = at is not None and mailing.scheduled_at == at
    audit.record(
        actor(),
        "mailing_scheduled" if later else "mailing_sent",
        subject_type="mailing",
        subject_id=mailing.id,
        detail=f"scheduled for {at.isoformat()}" if later else "sending now",
    )
    db.session.commit()
    flash("Scheduled." if later else "Sending has started.", "success")
    return redirect(url_for(".show", mailing_id=mailing.id))


def _send_time(form: SendForm) -> datetime | None:
    if not (form.at.data or "").strip():
        return None
    try:
        zone = ZoneInfo(form.timezone.data or "UTC")
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError("Choose a time zone from the list.") from exc
    try:
        local = datetime.fromisoformat(form.at.data.strip())
    except ValueError as exc:
        raise ValueError("Give the time as YYYY-MM-DDTHH:MM.") from exc
    if local.tzinfo is not None:
        raise ValueError("Give the time without a zone; choose the zone below.")
    return local.replace(tzinfo=zone)


# --- pause, resume, cancel -------------------------------------------------------------------


def _control(mailing_id: int, change, action: str, done: str):
    mailing = _mailing(mailing_id, lock=True)
    try:
        change(mailing)
    except DomainError as exc:  # refused before anything changed
        flash(exc.message, "error")
        return redirect(url_for(".show", mailing_id=mailing_id))
    audit.record(actor(), action, subject_type="mailing", subject_id=mailing.id)
    db.session.commit()
    flash(done, "success")
    return redirect(url_for(".show", mailing_id=mailing.id))


@blueprint.post("/<int:mailing_id>/pause")
@requires(Role.CAMPAIGNER)
def pause(mailing_id: int):
    return _control(
        mailing_id, lambda m: control.pause(m, actor=actor()), "mailing_paused", "Paused."
    )


@blueprint.post("/<int:mailing_id>/resume")
@requires(Role.CAMPAIGNER)
def resume(mailing_id: int):
    return _control(
        mailing_id,
        lambda m: control.resume(m, _settings(), actor=actor()),
        "mailing_resumed",
        "Resumed.",
    )


@blueprint.post("/<int:mailing_id>/cancel")
@requires(Role.CAMPAIGNER)
def cancel(mailing_id: int):
    return _control(
        mailing_id,
        lambda m: control.cancel(m, actor=actor()),
        "mailing_cancelled",
        "Cancelled: nothing more will be sent.",
    )


# --- helpers ---------------------------------------------------------------------------------


def _mailing(mailing_id: int, *, lock: bool = False) -> Mailing:
    # The lock (as in the API): two "send" clicks, or an edit racing a send, cannot both pass.
    mailing = db.session.get(Mailing, mailing_id, with_for_update=lock)
    if mailing is None:
        abort(404, f"No mailing with id {mailing_id}.")
    return mailing


def _settings():
    return current_app.config["CLARION"]
