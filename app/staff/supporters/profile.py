"""One supporter: their page, editing them, unsubscribing them, and GDPR export and erase."""

from __future__ import annotations

import json

from flask import Response, flash, redirect, render_template, request, url_for
from wtforms.fields import SelectChoice

from app import privacy
from app.auth import audit
from app.auth.models import Role
from app.campaigns.history import actions_taken
from app.extensions import db
from app.staff.access import actor, requires
from app.staff.supporters import blueprint
from app.staff.supporters.forms import EraseForm, SupporterForm, UnsubscribeForm, tag_names
from app.supporters import directory, groups, services
from app.supporters.models import SubscriptionStatus
from app.tracking.history import mailings_received


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
            supporter, list_ids=form.lists.data, tag_names=tag_names(form.tags.data)
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
