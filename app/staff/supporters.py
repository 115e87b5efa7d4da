"""Staff pages: Supporters — the directory, a supporter's page, lists, tags and saved segments.

Analysts read; campaigners change. Exporting or erasing a person is for admins only, as in
the API (app/privacy/api.py): a GDPR request reaches every domain and cannot be undone.
"""

from __future__ import annotations

import json

from flask import Response, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import (
    FieldList,
    Form,
    FormField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.fields import SelectChoice
from wtforms.validators import DataRequired, Length, Optional, Regexp, ValidationError

from app import privacy
from app.auth import audit
from app.auth.models import Role
from app.campaigns.history import actions_taken
from app.campaigns.services import all_campaigns
from app.errors import Conflict, DomainError, NotFound
from app.extensions import db
from app.security import parse_id
from app.staff.access import actor, requires, staff_blueprint
from app.supporters import directory, groups, services
from app.supporters.models import MailingList, Segment, SubscriptionStatus, Tag
from app.supporters.segments import (
    BEHAVIOUR_LIMIT,
    CUSTOM_PREFIX,
    DATE_FIELDS,
    DATE_OPS,
    TEXT_FIELDS,
    TEXT_OPS,
    BehaviourType,
    SegmentDefinitionError,
    behaviour_types,
    count_segment,
    validate_definition,
)
from app.tracking.behaviour import mailing_choices
from app.tracking.history import mailings_received

blueprint = staff_blueprint("staff_supporters", __name__, url_prefix="/staff/supporters")

CUSTOM_FIELD_NAME = r"^[\w\- ]{1,100}$"  # the segment engine's rule for custom.<name>


def _stripped(value) -> str:
    # A field left out of a forged or truncated form reads as empty, never None.
    return (value or "").strip()


STRIPPED = [_stripped]


# --- the directory ---------------------------------------------------------------------------


@blueprint.get("/")
@requires(Role.ANALYST)
def index():
    query = _directory_query(request.args)
    if not query.is_filtered and query.after is None and not directory.has_supporters():
        return render_template("staff/supporters/empty.html")
    return render_template(
        "staff/supporters/index.html",
        query=query,
        page=directory.search_directory(query),
        lists=groups.list_choices(),
        tags=groups.tag_choices(),
        statuses=list(SubscriptionStatus),
    )


def _directory_query(args) -> directory.DirectoryQuery:
    # A hand-edited or stale URL filters on nothing rather than failing.
    status = args.get("status", "")
    return directory.DirectoryQuery(
        text=args.get("q", "").strip()[: directory.MAX_QUERY_LENGTH],
        list_id=parse_id(args.get("list", "")),
        tag_id=parse_id(args.get("tag", "")),
        status=SubscriptionStatus(status) if status in set(SubscriptionStatus) else None,
        after=parse_id(args.get("after", "")),
    )


# --- one supporter ---------------------------------------------------------------------------


@blueprint.get("/<int:supporter_id>")
@requires(Role.ANALYST)
def show(supporter_id):
    supporter = directory.get_supporter(supporter_id)
    return render_template(
        "staff/supporters/show.html",
        supporter=supporter,
        mailings=mailings_received(supporter.id),
        actions=actions_taken(supporter.id),
        unsubscribe_form=UnsubscribeForm(),
    )


class CustomFieldForm(Form):
    name = StringField(
        "Field name",
        filters=STRIPPED,
        validators=[
            Optional(),
            Regexp(CUSTOM_FIELD_NAME, message="Use letters, digits, _ - and spaces (up to 100)."),
        ],
    )
    value = StringField("Value", filters=STRIPPED, validators=[Length(max=2000)])


class SupporterForm(FlaskForm):
    first_name = StringField("First name", filters=STRIPPED, validators=[Length(max=200)])
    last_name = StringField("Last name", filters=STRIPPED, validators=[Length(max=200)])
    postcode = StringField("Postcode", filters=STRIPPED, validators=[Length(max=40)])
    lists = SelectMultipleField("Lists", coerce=int)
    tags = StringField("Tags", filters=STRIPPED, validators=[Length(max=2000)])
    custom_fields = FieldList(FormField(CustomFieldForm), min_entries=1)

    def validate_tags(self, field):
        too_long = [name for name in _tag_names(field.data) if len(name) > 100]
        if too_long:
            raise ValidationError("A tag name is at most 100 characters.")


def _tag_names(text: str | None) -> list[str]:
    return [name.strip() for name in (text or "").split(",") if name.strip()]


@blueprint.route("/<int:supporter_id>/edit", methods=["GET", "POST"])
@requires(Role.CAMPAIGNER)
def edit(supporter_id):
    supporter = directory.get_supporter(supporter_id)
    if request.method == "GET":
        form = SupporterForm(
            data={
                "first_name": supporter.first_name,
                "last_name": supporter.last_name,
                "postcode": supporter.postcode,
                "lists": [m.id for m in supporter.lists],
                "tags": ", ".join(sorted(t.name for t in supporter.tags)),
                "custom_fields": [
                    {"name": k, "value": "" if v is None else str(v)}
                    for k, v in sorted((supporter.custom_fields or {}).items())
                ],
            }
        )
    else:
        form = SupporterForm()
    form.lists.choices = [SelectChoice(str(i), name) for i, name in groups.list_choices()]
    if form.validate_on_submit() and _custom_names_unique(form):
        custom = _custom_fields_from(form, supporter.custom_fields or {})
        services.update_supporter(
            supporter,
            {
                "first_name": form.first_name.data,
                "last_name": form.last_name.data,
                "postcode": form.postcode.data,
                "custom_fields": custom,
            },
            actor=actor(),
        )
        services.replace_groups(
            supporter, list_ids=form.lists.data, tag_names=_tag_names(form.tags.data)
        )
        db.session.commit()
        flash("Supporter saved.", "success")
        return redirect(url_for(".show", supporter_id=supporter.id))
    if not any(not entry.form.name.data for entry in form.custom_fields.entries):
        form.custom_fields.append_entry()  # always one empty row for a new field
    status = 422 if form.errors else 200
    return render_template("staff/supporters/edit.html", supporter=supporter, form=form), status


def _custom_names_unique(form: SupporterForm) -> bool:
    seen = set()
    for entry in form.custom_fields.entries:
        name = (entry.form.name.data or "").strip()
        if name in seen:
            entry.form.name.errors = [*entry.form.name.errors, "This field is already above."]
            return False
        if name:
            seen.add(name)
        elif (entry.form.value.data or "").strip():
            entry.form.name.errors = [*entry.form.name.errors, "Name the field for this value."]
            return False
    return True


def _custom_fields_from(form: SupporterForm, stored: dict) -> dict:
    """The changes to apply: new and changed values, and None for each field left out or blanked."""
    wanted = {}
    for entry in form.custom_fields.entries:
        name = (entry.form.name.data or "").strip()
        value = (entry.form.value.data or "").strip()
        if name and value:
            # Keep a number from the API a number when staff did not change it.
            wanted[name] = stored[name] if str(stored.get(name)) == value else value
    return {**{name: None for name in stored if name not in wanted}, **wanted}


class UnsubscribeForm(FlaskForm):
    reason = StringField(
        "Reason (kept in the consent history)", filters=STRIPPED, validators=[Length(max=500)]
    )


@blueprint.post("/<int:supporter_id>/unsubscribe")
@requires(Role.CAMPAIGNER)
def unsubscribe(supporter_id):
    supporter = directory.get_supporter(supporter_id)
    form = UnsubscribeForm()
    if not form.validate_on_submit():
        flash("The reason is at most 500 characters.", "error")
        return redirect(url_for(".show", supporter_id=supporter.id))
    reason = form.reason.data or "unsubscribed by staff"
    if services.change_status(
        supporter, SubscriptionStatus.UNSUBSCRIBED, channel="staff", actor=actor(), detail=reason
    ):
        audit.record(
            actor(), "supporter_unsubscribed", subject_type="supporter", subject_id=supporter.id
        )
        db.session.commit()
        flash("Unsubscribed. They will get no more campaign mail.", "success")
    else:
        flash("They were already unsubscribed.", "info")
    return redirect(url_for(".show", supporter_id=supporter.id))


# --- GDPR: export and erase ------------------------------------------------------------------


@blueprint.post("/<int:supporter_id>/export")
@requires(Role.ADMIN)
def export(supporter_id):
    supporter = directory.get_supporter(supporter_id)
    data = privacy.export_supporter(supporter)
    audit.record(actor(), "supporter_exported", subject_type="supporter", subject_id=supporter.id)
    db.session.commit()
    return Response(
        json.dumps(data, indent=2, ensure_ascii=False),
        mimetype="application/json",
        headers={"Content-Disposition": f'attachment; filename="supporter-{supporter.id}.json"'},
    )


class EraseForm(FlaskForm):
    confirm_email = StringField(
        "Type the supporter's email address to confirm",
        filters=STRIPPED,
        validators=[DataRequired()],
    )


@blueprint.route("/<int:supporter_id>/erase", methods=["GET", "POST"])
@requires(Role.ADMIN)
def erase(supporter_id):
    supporter = directory.get_supporter(supporter_id)
    form = EraseForm()
    if form.validate_on_submit():
        if form.confirm_email.data.lower() != supporter.email:
            form.confirm_email.errors.append("That is not this supporter's address.")
        else:
            # The entry names the id only: the log must not keep what was erased.
            audit.record(
                actor(), "supporter_erased", subject_type="supporter", subject_id=supporter.id
            )
            privacy.erase_supporter(supporter)
            db.session.commit()
            flash(f"Supporter {supporter_id} was erased.", "success")
            return redirect(url_for(".index"))
    status = 422 if form.errors else 200
    return render_template("staff/supporters/erase.html", supporter=supporter, form=form), status


# --- lists and tags --------------------------------------------------------------------------


class NameForm(FlaskForm):
    name = StringField("Name", filters=STRIPPED, validators=[DataRequired(), Length(max=100)])


class ListForm(FlaskForm):
    name = StringField("Name", filters=STRIPPED, validators=[DataRequired(), Length(max=200)])
    description = TextAreaField("Description", filters=STRIPPED, validators=[Length(max=2000)])


@blueprint.get("/lists")
@requires(Role.ANALYST)
def lists():
    return _lists_page(ListForm())


@blueprint.post("/lists")
@requires(Role.CAMPAIGNER)
def create_list():
    form = ListForm()
    if form.validate_on_submit():
        data = {"name": form.name.data, "description": form.description.data or None}
        if _saved(form.name, lambda: groups.create_list(data)):
            flash(f"List {form.name.data!r} created.", "success")
            return redirect(url_for(".lists"))
    return _lists_page(form), 422


def _lists_page(form):
    return render_template("staff/supporters/lists.html", lists=groups.all_lists(), form=form)


@blueprint.route("/lists/<int:list_id>/edit", methods=["GET", "POST"])
@requires(Role.CAMPAIGNER)
def edit_list(list_id):
    mailing_list = _get(MailingList, list_id, "list")
    form = ListForm(obj=mailing_list)
    if form.validate_on_submit():
        data = {"name": form.name.data, "description": form.description.data or None}
        if _saved(form.name, lambda: groups.update_list(mailing_list, data)):
            flash("List saved.", "success")
            return redirect(url_for(".lists"))
    return render_template(
        "staff/supporters/group_edit.html", kind="list", group=mailing_list, form=form
    ), 422 if form.errors else 200


@blueprint.route("/lists/<int:list_id>/delete", methods=["GET", "POST"])
@requires(Role.CAMPAIGNER)
def delete_list(list_id):
    mailing_list = groups.with_member_counts(_get(MailingList, list_id, "list"))
    if request.method == "POST":
        groups.delete_list(mailing_list)
        db.session.commit()
        flash(f"List {mailing_list.name!r} deleted; its members are still supporters.", "success")
        return redirect(url_for(".lists"))
    return render_template(
        "staff/supporters/group_delete.html",
        kind="list",
        group=mailing_list,
        members=mailing_list.member_count,
    )


@blueprint.get("/tags")
@requires(Role.ANALYST)
def tags():
    return _tags_page(NameForm())


@blueprint.post("/tags")
@requires(Role.CAMPAIGNER)
def create_tag():
    form = NameForm()
    if form.validate_on_submit() and _saved(
        form.name, lambda: groups.create_tag({"name": form.name.data})
    ):
        flash(f"Tag {form.name.data!r} created.", "success")
        return redirect(url_for(".tags"))
    return _tags_page(form), 422


def _tags_page(form):
    return render_template("staff/supporters/tags.html", tags=groups.all_tags(), form=form)


@blueprint.route("/tags/<int:tag_id>/edit", methods=["GET", "POST"])
@requires(Role.CAMPAIGNER)
def edit_tag(tag_id):
    tag = _get(Tag, tag_id, "tag")
    form = NameForm(obj=tag)
    if form.validate_on_submit() and _saved(
        form.name, lambda: groups.rename_tag(tag, form.name.data)
    ):
        flash("Tag renamed.", "success")
        return redirect(url_for(".tags"))
    return render_template(
        "staff/supporters/group_edit.html", kind="tag", group=tag, form=form
    ), 422 if form.errors else 200


@blueprint.route("/tags/<int:tag_id>/delete", methods=["GET", "POST"])
@requires(Role.CAMPAIGNER)
def delete_tag(tag_id):
    tag = _get(Tag, tag_id, "tag")
    if request.method == "POST":
        groups.delete_tag(tag)
        db.session.commit()
        flash(f"Tag {tag.name!r} deleted; the supporters who had it are untagged.", "success")
        return redirect(url_for(".tags"))
    members = groups.tag_counts().get(tag.id, 0)
    return render_template(
        "staff/supporters/group_delete.html", kind="tag", group=tag, members=members
    )


def _get(model, row_id: int, label: str):
    found = db.session.get(model, row_id)
    if found is None:
        raise NotFound(f"No {label} with id {row_id}.")
    return found


def _saved(name_field, change) -> bool:
    """Run a create/rename and commit; a name already taken becomes an error on the field."""
    try:
        change()
        db.session.commit()
    except Conflict as exc:
        db.session.rollback()
        name_field.errors = [*name_field.errors, exc.message]
        return False
    return True


# --- saved segments --------------------------------------------------------------------------

OP_LABELS = {
    "eq": "is",
    "neq": "is not",
    "in": "is one of (comma-separated)",
    "contains": "contains",
    "starts_with": "starts with",
    "is_empty": "is empty",
    "not_empty": "is not empty",
    "before": "is before (date)",
    "after": "is after (date)",
}
NO_VALUE_OPS = ("is_empty", "not_empty")


class ConditionForm(Form):
    field = SelectField("Field", validate_choice=False)
    op = SelectField(
        "Test", choices=[SelectChoice(op, OP_LABELS[op]) for op in TEXT_OPS + DATE_OPS]
    )
    value = StringField("Value", filters=STRIPPED, validators=[Length(max=10_000)])


class BehaviourForm(Form):
    # validate_choice off: the engine says which ids and types exist, next to the field.
    type = SelectField("Behaviour", validate_choice=False)
    campaign_id = SelectField("Campaign", validate_choice=False)
    mailing_id = SelectField("Mailing", validate_choice=False)
    last_mailings = StringField(
        "Last N mailings", default="5", filters=STRIPPED, validators=[Length(max=20)]
    )
    months = StringField("Months", default="12", filters=STRIPPED, validators=[Length(max=20)])


class SegmentForm(FlaskForm):
    name = StringField("Name", filters=STRIPPED, validators=[DataRequired(), Length(max=200)])
    include_lists = SelectMultipleField("In any of these lists", coerce=int)
    exclude_lists = SelectMultipleField("Not in any of these lists", coerce=int)
    include_tags = SelectMultipleField("Having any of these tags", coerce=int)
    exclude_tags = SelectMultipleField("Having none of these tags", coerce=int)
    statuses = SelectMultipleField(
        "Subscription statuses",
        choices=[SelectChoice(s.value) for s in SubscriptionStatus],
        default=[SubscriptionStatus.SUBSCRIBED.value],
    )
    match = SelectField(
        "Conditions to meet",
        choices=[SelectChoice("all", "All of them"), SelectChoice("any", "Any one of them")],
    )
    conditions = FieldList(FormField(ConditionForm), min_entries=1, max_entries=50)
    behaviour = FieldList(FormField(BehaviourForm), min_entries=1, max_entries=BEHAVIOUR_LIMIT)


def _segment_form(segment: Segment | None = None) -> SegmentForm:
    if request.method == "POST" or segment is None:
        form = SegmentForm()
    else:
        definition = segment.definition or {}
        form = SegmentForm(
            data={
                "name": segment.name,
                **{k: definition.get(k, []) for k in ("include_lists", "exclude_lists")},
                **{k: definition.get(k, []) for k in ("include_tags", "exclude_tags")},
                "statuses": definition.get("statuses", [SubscriptionStatus.SUBSCRIBED.value]),
                "match": definition.get("match", "all"),
                "conditions": [
                    {
                        "field": c["field"],
                        "op": c["op"],
                        "value": ", ".join(map(str, c["value"]))
                        if isinstance(c.get("value"), list)
                        else ("" if c.get("value") is None else str(c["value"])),
                    }
                    for c in definition.get("conditions", [])
                ],
                "behaviour": [
                    {key: "" if value is None else str(value) for key, value in item.items()}
                    for item in definition.get("behaviour", [])
                ],
            }
        )
    list_choices = [SelectChoice(str(i), name) for i, name in groups.list_choices()]
    tag_choices = [SelectChoice(str(i), name) for i, name in groups.tag_choices()]
    form.include_lists.choices = form.exclude_lists.choices = list_choices
    form.include_tags.choices = form.exclude_tags.choices = tag_choices
    fields = [*TEXT_FIELDS, *DATE_FIELDS]
    fields += [CUSTOM_PREFIX + name for name in services.custom_field_names()]
    for entry in form.conditions.entries:
        chosen = entry.form.field.data
        extra = [chosen] if chosen and chosen not in fields else []
        entry.form.field.choices = [
            SelectChoice("", "(no condition)"),
            *map(SelectChoice, fields + extra),
        ]
    _set_behaviour_choices(form)
    return form


def _set_behaviour_choices(form: SegmentForm) -> None:
    types = [("", "(no behaviour)")] + [(t.name, t.label) for t in behaviour_types()]
    campaigns = [("", "(choose a campaign)")] + [(str(c.id), c.title) for c in all_campaigns()]
    mailings = [("", "(choose a mailing)")] + [(str(i), name) for i, name in mailing_choices()]
    for entry in form.behaviour.entries:
        row = entry.form
        row.type.choices = _keeping(types, row.type.data)
        row.campaign_id.choices = _keeping(campaigns, row.campaign_id.data, "Campaign")
        row.mailing_id.choices = _keeping(mailings, row.mailing_id.data, "Mailing")


def _keeping(choices: list[tuple[str, str]], chosen, label: str = "Behaviour") -> list:
    """The choices, plus the one already chosen if it is not among them (so a save keeps it)."""
    if chosen and chosen not in {value for value, _ in choices}:
        choices = [*choices, (chosen, f"{label} {chosen}")]
    return [SelectChoice(value, text) for value, text in choices]


def _definition_from(form: SegmentForm) -> tuple[dict, dict[str, list[int]]]:
    """The form as a segment definition, and which form row each condition came from."""
    conditions, rows = [], []
    for row, entry in enumerate(form.conditions.entries):
        condition = entry.form
        if not condition.field.data:
            continue  # an empty row
        value = (condition.value.data or "").strip()
        if condition.op.data in NO_VALUE_OPS:
            value = None
        elif condition.op.data == "in":
            value = [v.strip() for v in value.split(",") if v.strip()]
        conditions.append({"field": condition.field.data, "op": condition.op.data, "value": value})
        rows.append(row)
    behaviour, behaviour_rows = _behaviour_from(form)
    definition = {
        key: getattr(form, key).data or []
        for key in ("include_lists", "exclude_lists", "include_tags", "exclude_tags", "statuses")
    }
    definition |= {"match": form.match.data, "conditions": conditions, "behaviour": behaviour}
    return definition, {"conditions": rows, "behaviour": behaviour_rows}


def _behaviour_from(form: SegmentForm) -> tuple[list[dict], list[int]]:
    """The behaviour rows in use, each with only the values its type takes."""
    types: dict[str, BehaviourType] = {t.name: t for t in behaviour_types()}
    items, rows = [], []
    for row, entry in enumerate(form.behaviour.entries):
        chosen = entry.form.type.data
        if not chosen:
            continue  # an empty row
        params = types[chosen].params if chosen in types else ()
        items.append({"type": chosen, **{p: _number(entry.form[p].data) for p in params}})
        rows.append(row)
    return items, rows


def _number(text):
    """A whole number from the form; anything else as typed, for the engine to refuse."""
    text = (text or "").strip()
    if not text:
        return None
    return int(text) if text.isascii() and text.isdigit() and len(text) < 19 else text


def _show_definition_errors(form: SegmentForm, error: SegmentDefinitionError, rows) -> list[str]:
    """Put each of the engine's messages next to the field it is about; return them all."""
    shown = []
    for key, messages in error.details.items():
        if key in ROW_LISTS and isinstance(messages, dict):
            for index, by_field in messages.items():
                entry = form[key].entries[rows[key][int(index)]].form
                fallback = ROW_LISTS[key]
                for name, texts in _as_dict(by_field).items():
                    target = entry[name] if name in entry._fields else entry[fallback]
                    target.errors = [*target.errors, *_flatten(texts)]
                    shown += _flatten(texts)
        elif key in form._fields and key not in ROW_LISTS:
            field = form._fields[key]
            field.errors = [*field.errors, *_flatten(messages)]
            shown += _flatten(messages)
        else:
            form.form_errors.extend(_flatten(messages))
            shown += _flatten(messages)
    if not error.details:
        form.form_errors.append(error.message)
        shown.append(error.message)
    return shown


# The lists of form rows, and the field of a row that takes messages about the row as a whole.
ROW_LISTS = {"conditions": "value", "behaviour": "type"}


def _as_dict(value) -> dict:
    return value if isinstance(value, dict) else {"value": value}


def _flatten(messages) -> list[str]:
    if isinstance(messages, dict):
        return [m for value in messages.values() for m in _flatten(value)]
    if isinstance(messages, list | tuple):
        return [m for value in messages for m in _flatten(value)]
    return [str(messages)]


def _checked_definition(form: SegmentForm) -> tuple[dict | None, list[str]]:
    """Validate the form, then its definition; return (the definition or None, every problem).

    The problems of the name field are left out: a count does not need a name.
    """
    form.validate()
    problems = [m for key, errs in form.errors.items() if key != "name" for m in _flatten(errs)]
    definition, rows = _definition_from(form)
    try:
        checked = validate_definition(definition)
    except SegmentDefinitionError as exc:
        return None, problems + _show_definition_errors(form, exc, rows)
    return (None if problems else checked), problems


@blueprint.get("/segments")
@requires(Role.ANALYST)
def segments():
    return render_template("staff/supporters/segments.html", segments=groups.all_segments())


@blueprint.route("/segments/new", methods=["GET", "POST"])
@requires(Role.CAMPAIGNER)
def new_segment():
    return _segment_page(None)


@blueprint.get("/segments/<int:segment_id>")
@requires(Role.ANALYST)
def show_segment(segment_id):
    return _segment_page(_get(Segment, segment_id, "segment"))


@blueprint.post("/segments/<int:segment_id>")
@requires(Role.CAMPAIGNER)
def save_segment(segment_id):
    return _segment_page(_get(Segment, segment_id, "segment"))


def _segment_page(segment: Segment | None):
    form = _segment_form(segment)
    count = None
    if request.method == "GET" and segment is not None:
        count = count_segment(segment.definition)
    elif form.is_submitted():
        definition, _ = _checked_definition(form)
        if definition is not None and request.form.get("intent") == "count":
            count = count_segment(definition)  # counting needs no name and saves nothing
        elif definition is not None and not form.name.errors:
            data = {"name": form.name.data, "definition": definition}
            if _saved(form.name, lambda: _create_or_update(segment, data)):
                flash("Segment saved.", "success")
                return redirect(url_for(".segments"))
    if not any(not entry.form.field.data for entry in form.conditions.entries):
        choices = form.conditions.entries[0].form.field.choices
        form.conditions.append_entry().form.field.choices = choices  # a row for one more
    if len(form.behaviour.entries) < BEHAVIOUR_LIMIT and all(
        entry.form.type.data for entry in form.behaviour.entries
    ):
        form.behaviour.append_entry()
        _set_behaviour_choices(form)
    has_errors = any(f.errors for f in form) or form.form_errors or _rows_have_errors(form)
    status = 422 if has_errors else 200
    return render_template(
        "staff/supporters/segment_edit.html", segment=segment, form=form, count=count
    ), status


def _create_or_update(segment: Segment | None, data: dict) -> Segment:
    if segment is None:
        return groups.create_segment(data)
    return groups.update_segment(segment, data)


@blueprint.post("/segments/count")
@requires(Role.ANALYST)
def segment_count():
    """The live count while a segment is edited: a small fragment for htmx."""
    definition, problems = _checked_definition(_segment_form())
    count = count_segment(definition) if definition is not None else None
    return render_template("staff/supporters/_segment_count.html", count=count, problems=problems)


def _rows_have_errors(form: SegmentForm) -> bool:
    # FieldList.errors is fixed when the form validates; the engine's messages come later.
    return any(f.errors for key in ROW_LISTS for entry in form[key].entries for f in entry.form)


@blueprint.route("/segments/<int:segment_id>/delete", methods=["GET", "POST"])
@requires(Role.CAMPAIGNER)
def delete_segment(segment_id):
    segment = _get(Segment, segment_id, "segment")
    if request.method == "POST":
        try:
            groups.delete_segment(segment)
        except DomainError as exc:
            flash(
                f"{exc.message} ({', '.join(map(str, exc.details.get('mailing_ids', [])))})",
                "error",
            )
            return redirect(url_for(".show_segment", segment_id=segment.id))
        db.session.commit()
        flash(f"Segment {segment.name!r} deleted.", "success")
        return redirect(url_for(".segments"))
    return render_template(
        "staff/supporters/group_delete.html", kind="segment", group=segment, members=None
    )
