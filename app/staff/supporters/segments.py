"""Saved segments: the editor (lists, tags, statuses, field conditions, behaviour) and its count.

The segment engine (app/supporters/segments.py) checks a definition; its messages are put
next to the form rows they are about.
"""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from wtforms.fields import SelectChoice

from app.auth.models import Role
from app.campaigns.services import all_campaigns
from app.errors import DomainError
from app.extensions import db
from app.staff.access import requires
from app.staff.forms import add_errors, add_form_errors, flatten_messages
from app.staff.supporters import blueprint
from app.staff.supporters.forms import NO_VALUE_OPS, SegmentForm
from app.staff.supporters.groups import get_or_404, saved_unless_taken
from app.supporters import groups, services
from app.supporters.behaviours import BEHAVIOUR_LIMIT, BehaviourType, behaviour_types
from app.supporters.models import Segment, SubscriptionStatus
from app.supporters.segments import (
    CUSTOM_PREFIX,
    DATE_FIELDS,
    TEXT_FIELDS,
    SegmentDefinitionError,
    count_segment,
    validate_definition,
)
from app.tracking.behaviour import mailing_choices

# The lists of form rows, and the field of a row that takes messages about the row as a whole.
ROW_LISTS = {"conditions": "value", "behaviour": "type"}


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
    return _segment_page(get_or_404(Segment, segment_id, "segment"))


@blueprint.post("/segments/<int:segment_id>")
@requires(Role.CAMPAIGNER)
def save_segment(segment_id):
    return _segment_page(get_or_404(Segment, segment_id, "segment"))


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
            if saved_unless_taken(form.name, lambda: _create_or_update(segment, data)):
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


@blueprint.route("/segments/<int:segment_id>/delete", methods=["GET", "POST"])
@requires(Role.CAMPAIGNER)
def delete_segment(segment_id):
    segment = get_or_404(Segment, segment_id, "segment")
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


# --- the form, from a segment and back -------------------------------------------------------


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


# --- the engine's verdict on the form --------------------------------------------------------


def _checked_definition(form: SegmentForm) -> tuple[dict | None, list[str]]:
    """Validate the form, then its definition; return (the definition or None, every problem).

    The problems of the name field are left out: a count does not need a name.
    """
    form.validate()
    problems = [
        m for key, errs in form.errors.items() if key != "name" for m in flatten_messages(errs)
    ]
    definition, rows = _definition_from(form)
    try:
        checked = validate_definition(definition)
    except SegmentDefinitionError as exc:
        return None, problems + _show_definition_errors(form, exc, rows)
    return (None if problems else checked), problems


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
                    shown += add_errors(target, texts)
        elif key in form._fields and key not in ROW_LISTS:
            shown += add_errors(form._fields[key], messages)
        else:
            shown += add_form_errors(form, messages)
    if not error.details:
        shown += add_form_errors(form, error.message)
    return shown


def _as_dict(value) -> dict:
    return value if isinstance(value, dict) else {"value": value}


def _rows_have_errors(form: SegmentForm) -> bool:
    # FieldList.errors is fixed when the form validates; the engine's messages come later.
    return any(f.errors for key in ROW_LISTS for entry in form[key].entries for f in entry.form)
