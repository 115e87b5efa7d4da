"""Staff pages: campaigns, their targets, model letters, previews and letters.

Input is checked by the API's own schemas (app/campaigns/schemas.py) and the campaign
services, so a campaign made here obeys exactly the rules of one made through /api/v1;
their messages are shown next to the fields they name.
"""

from __future__ import annotations

from zoneinfo import available_timezones

from flask import abort, flash, redirect, render_template, request, url_for
from marshmallow import ValidationError
from sqlalchemy.exc import IntegrityError
from wtforms import DateField, FieldList, Form, FormField, SelectField, StringField, TextAreaField
from wtforms.fields import SelectChoice

from app.auth import audit
from app.auth.models import Role
from app.campaigns import letter_text, services
from app.campaigns import schemas as s
from app.campaigns.letters import letter_rows
from app.campaigns.models import Campaign, CampaignKind, CampaignStatus, LetterStatus
from app.campaigns.urgent_action import MAX_PASTE_CHARACTERS, parse_urgent_action
from app.campaigns.views import page_vars as action_page_vars
from app.errors import Conflict, Invalid
from app.extensions import db
from app.mailings.delivery.launch import hold_scheduled_mailings_of
from app.security import parse_id
from app.staff.access import actor, requires, staff_blueprint

blueprint = staff_blueprint("staff_campaigns", __name__, url_prefix="/staff/campaigns")

TIMEZONES = sorted(available_timezones())
PRINT_BATCH = 200
CAMPAIGN_TEXT_FIELDS = (
    "title",
    "slug",
    "reference",
    "summary",
    "kind",
    "external_url",
    "status",
    "timezone",
    "letter_subject",
    "letter_body",
    "thank_you",
)
LETTER_STATUSES = tuple(status.value for status in LetterStatus)
TARGET_FIELDS = ("name", "title", "organisation", "salutation", "email", "postal_address")


PLACEHOLDER_MEANINGS = {
    "salutation": "the target's salutation, for example “Dear Mr. Lyons”",
    "supporter_name": "the supporter's name",
    "supporter_town": "the supporter's town, if we know it",
}


@blueprint.context_processor
def _placeholders():
    # Listed from letter_text itself, so the help names exactly what the letters fill in.
    return {
        "placeholders": [
            (name, PLACEHOLDER_MEANINGS.get(name, "")) for name in letter_text.PLACEHOLDERS
        ]
    }


class TargetFields(Form):
    name = StringField("Name")
    title = StringField("Title")
    organisation = StringField("Organisation")
    salutation = StringField("Salutation", description="How the letter opens: Dear Mr. Lyons")
    email = StringField("Email address", description="Leave empty for a postal-only target.")
    postal_address = TextAreaField("Postal address", render_kw={"rows": 4})


class CampaignForm(Form):
    title = StringField("Title")
    slug = StringField("Web address name", description="Lower-case letters, digits and dashes.")
    reference = StringField("Reference", description="For example UA 034/25.")
    summary = TextAreaField(
        "Introduction and ask",
        description="Shown above the letter. Limited HTML (paragraphs, bold, links).",
        render_kw={"rows": 6},
    )
    kind = SelectField(
        "Kind", choices=[SelectChoice(k.value, k.value.title()) for k in CampaignKind]
    )
    external_url = StringField("External page", description="Where a click campaign sends people.")
    status = SelectField(
        "Status", choices=[SelectChoice(v.value, v.value.title()) for v in CampaignStatus]
    )
    deadline_date = DateField("Last day to act", description="Optional.")
    timezone = SelectField(
        "Time zone of the deadline",
        choices=TIMEZONES,
        default="UTC",
        validate_choice=False,
        description="The deadline is the end of that day in this time zone.",
    )
    letter_subject = StringField("Letter subject")
    letter_body = TextAreaField("Model letter", render_kw={"rows": 16})
    thank_you = TextAreaField("Thank-you message", render_kw={"rows": 3})
    targets = FieldList(FormField(TargetFields), min_entries=0)


class LetterForm(Form):
    letter_subject = StringField("Letter subject")
    letter_body = TextAreaField("Model letter", render_kw={"rows": 18})


def _campaign_or_404(campaign_id: int) -> Campaign:
    campaign = db.session.get(Campaign, campaign_id)
    if campaign is None:
        abort(404, f"There is no campaign {campaign_id}.")
    return campaign


def _target_or_404(campaign: Campaign, target_id: int):
    target = services.target_of(campaign, target_id)
    if target is None:
        abort(404, f"Campaign {campaign.id} has no target {target_id}.")
    return target


def _blank_to_none(values: dict) -> dict:
    return {k: (v.strip() or None) if isinstance(v, str) else v for k, v in values.items()}


def _show_errors(form: Form, messages: dict) -> None:
    """Put schema or service messages next to the fields they name; others on the form."""
    for name, value in messages.items():
        name = "deadline_date" if name == "deadline" else name
        field = form._fields.get(name)
        if name == "targets" and isinstance(value, dict):
            entries = form.targets.entries
            for index, target_messages in value.items():
                if isinstance(index, int) and index < len(entries):
                    _show_errors(entries[index].form, target_messages)
            # FieldList keeps no errors of its own unless validated: the summary needs some.
            form.targets.errors = [entry.form.errors for entry in entries if entry.form.errors]
        elif field is not None:
            field.errors = [_plain(m) for m in _flatten(value)]
        else:
            form.form_errors = [*form.form_errors, *_flatten(value)]


def _plain(message: str) -> str:
    # Marshmallow's words for an empty required field, as a form would say it.
    if message in ("Field may not be null.", "Missing data for required field."):
        return "This field is required."
    return message


def _flatten(value) -> list[str]:
    if isinstance(value, dict):
        return [m for v in value.values() for m in _flatten(v)]
    return list(value) if isinstance(value, list | tuple) else [str(value)]


def _target_payload(fields: dict) -> dict:
    return _blank_to_none({k: fields.get(k) or "" for k in TARGET_FIELDS})


def _campaign_payload(form: CampaignForm, *, with_targets: bool) -> dict:
    payload = _blank_to_none({k: request.form.get(k, "") for k in CAMPAIGN_TEXT_FIELDS})
    deadline = request.form.get("deadline_date", "").strip()
    if deadline:
        payload["deadline_date"] = deadline
    else:
        payload["deadline"] = None
    if with_targets:
        rows = [_target_payload(entry.data) for entry in form.targets.entries]
        # An empty row is one the staff member did not use, not a target without a name.
        payload["targets"] = [row for row in rows if any(row.values())]
    return payload


def _refuse(template: str, form: Form, **context):
    return render_template(template, form=form, **context), 422


def _save(form: Form, campaign: Campaign, data: dict) -> bool:
    """Apply checked fields and flush; False (with messages on the form) when refused."""
    slug_owner = services.campaign_id_by_slug(data.get("slug") or "")
    if data.get("slug") and slug_owner not in (None, campaign.id):
        form.slug.errors = ["Another campaign has this web address name."]
        return False
    try:
        services.check_targets_reachable(data.get("targets") or [])
        services.apply_campaign_fields(campaign, data)
    except (Invalid, Conflict) as exc:
        db.session.rollback()
        _show_errors(form, exc.details or {"form": [exc.message]})
        return False
    db.session.add(campaign)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        form.slug.errors = ["Another campaign has this web address name."]
        return False
    return True


@blueprint.get("/")
@requires(Role.ANALYST)
def index():
    after = parse_id(request.args.get("after", "")) if request.args.get("after") else None
    rows = services.campaign_overviews(after)
    next_after = rows[-1].campaign.id if len(rows) == services.STAFF_PAGE_SIZE else None
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
        data = s.CampaignInSchema().load(_campaign_payload(form, with_targets=True))
    except ValidationError as exc:
        _show_errors(form, exc.messages)
        return _refuse("staff/campaigns/new.html", form, paste_text="")
    campaign = Campaign(timezone="UTC")
    if not _save(form, campaign, data):
        return _refuse("staff/campaigns/new.html", form, paste_text="")
    audit.record(
        actor(),
        "campaign_created",
        subject_type="campaign",
        subject_id=campaign.id,
        detail=f"{campaign.slug} ({campaign.status.value})",
    )
    db.session.commit()
    flash(f"Campaign “{campaign.title}” created.", "success")
    _warn_of_unknown_placeholders(campaign)
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
    campaign = _campaign_or_404(campaign_id)
    counts = services.letter_counts(campaign.id)
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
    campaign = _campaign_or_404(campaign_id)
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
    payload = _campaign_payload(form, with_targets=False)
    payload.pop("status", None)  # opened and closed with their own buttons, which audit it
    try:
        data = s.CampaignPatchSchema(partial=True).load(payload)
    except ValidationError as exc:
        _show_errors(form, exc.messages)
        return _refuse("staff/campaigns/edit.html", form, campaign=campaign)
    if not _save(form, campaign, data):
        return _refuse("staff/campaigns/edit.html", form, campaign=campaign)
    hold_scheduled_mailings_of(campaign.id)  # the deadline may have moved into the past
    db.session.commit()
    flash("Campaign saved.", "success")
    _warn_of_unknown_placeholders(campaign)
    return redirect(url_for(".show", campaign_id=campaign.id), 303)


@blueprint.route("/<int:campaign_id>/letter", methods=["GET", "POST"])
@requires(Role.CAMPAIGNER)
def letter(campaign_id: int):
    campaign = _campaign_or_404(campaign_id)
    context = {"campaign": campaign}
    if request.method == "GET":
        form = LetterForm(data={k: getattr(campaign, k) for k in ("letter_subject", "letter_body")})
        return render_template("staff/campaigns/letter.html", form=form, **context)
    form = LetterForm(request.form)
    payload = _blank_to_none(
        {k: request.form.get(k, "") for k in ("letter_subject", "letter_body")}
    )
    try:
        data = s.CampaignPatchSchema(partial=True).load(payload)
    except ValidationError as exc:
        _show_errors(form, exc.messages)
        return _refuse("staff/campaigns/letter.html", form, **context)
    services.apply_campaign_fields(campaign, data)
    db.session.commit()
    flash("Model letter saved.", "success")
    _warn_of_unknown_placeholders(campaign)
    return redirect(url_for(".preview", campaign_id=campaign.id), 303)


@blueprint.get("/<int:campaign_id>/preview")
@requires(Role.ANALYST)
def preview(campaign_id: int):
    """Show the action page as a supporter would see it; a read, so nothing is recorded."""
    campaign = _campaign_or_404(campaign_id)
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


@blueprint.post("/<int:campaign_id>/open")
@requires(Role.CAMPAIGNER)
def open_campaign(campaign_id: int):
    return _change_status(_campaign_or_404(campaign_id), CampaignStatus.OPEN, "campaign_opened")


@blueprint.post("/<int:campaign_id>/close")
@requires(Role.CAMPAIGNER)
def close_campaign(campaign_id: int):
    return _change_status(_campaign_or_404(campaign_id), CampaignStatus.CLOSED, "campaign_closed")


def _warn_of_unknown_placeholders(campaign: Campaign) -> None:
    unknown = services.unknown_placeholders(campaign.letter_body)
    if unknown:
        flash(
            f"The model letter has {', '.join(unknown)}, which is not a placeholder: "
            "supporters' letters will show it as written.",
            "error",
        )


def _change_status(campaign: Campaign, status: CampaignStatus, action: str):
    if campaign.status != status:
        services.change_status(campaign, status)
        audit.record(actor(), action, subject_type="campaign", subject_id=campaign.id)
        db.session.commit()
        flash(f"The campaign is {status.value}.", "success")
    return redirect(url_for(".show", campaign_id=campaign.id), 303)


@blueprint.route("/<int:campaign_id>/targets/new", methods=["GET", "POST"])
@requires(Role.CAMPAIGNER)
def new_target(campaign_id: int):
    campaign = _campaign_or_404(campaign_id)
    return _target_form(campaign, None)


@blueprint.route("/<int:campaign_id>/targets/<int:target_id>/edit", methods=["GET", "POST"])
@requires(Role.CAMPAIGNER)
def edit_target(campaign_id: int, target_id: int):
    campaign = _campaign_or_404(campaign_id)
    return _target_form(campaign, _target_or_404(campaign, target_id))


def _target_form(campaign: Campaign, target):
    context = {"campaign": campaign, "target": target}
    if request.method == "GET":
        form = TargetFields(data={k: getattr(target, k) for k in TARGET_FIELDS} if target else {})
        return render_template("staff/campaigns/target.html", form=form, **context)
    form = TargetFields(request.form)
    try:
        data = s.TargetSchema().load(_target_payload(request.form))
        if target is None:
            services.add_target(campaign, data)
        else:
            services.update_target(target, data)
    except ValidationError as exc:
        _show_errors(form, exc.messages)
        return _refuse("staff/campaigns/target.html", form, **context)
    except Invalid as exc:
        db.session.rollback()
        _show_errors(form, exc.details)
        return _refuse("staff/campaigns/target.html", form, **context)
    db.session.commit()
    flash("Target saved.", "success")
    return redirect(url_for(".show", campaign_id=campaign.id), 303)


@blueprint.post("/<int:campaign_id>/targets/<int:target_id>/remove")
@requires(Role.CAMPAIGNER)
def remove_target(campaign_id: int, target_id: int):
    campaign = _campaign_or_404(campaign_id)
    target = _target_or_404(campaign, target_id)
    try:
        services.remove_target(campaign, target)
    except Conflict as exc:
        db.session.rollback()
        flash(exc.message, "error")
    else:
        db.session.commit()
        flash("Target removed.", "success")
    return redirect(url_for(".show", campaign_id=campaign_id), 303)


@blueprint.get("/<int:campaign_id>/letters")
@requires(Role.ANALYST)
def letters(campaign_id: int):
    campaign = _campaign_or_404(campaign_id)
    target_id = parse_id(request.args.get("target", ""))
    target = _target_or_404(campaign, target_id) if request.args.get("target") else None
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
            limit=services.STAFF_PAGE_SIZE,
        )
    )
    next_after = rows[-1][0].id if len(rows) == services.STAFF_PAGE_SIZE else None
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
    campaign = _campaign_or_404(campaign_id)
    target = _target_or_404(campaign, target_id)
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
