"""A/B test a mailing: set up a draft's variants and rules, remove the test, pick the winner.

The same services as the API's /ab-test routes (app/mailings/abtest/), so what a test may be
and when a winner may be picked is written once; this page only speaks in percent and hours.
"""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from marshmallow import validate

from app.auth.models import Role
from app.errors import DomainError
from app.extensions import db
from app.mailings.abtest import decision, design
from app.mailings.abtest.schemas import AbTestInSchema
from app.staff.access import actor, requires
from app.staff.forms import add_errors, add_form_errors, flatten_messages
from app.staff.mailings import blueprint
from app.staff.mailings.forms import PERCENT_FIELDS, AbTestForm, variant_label
from app.staff.mailings.views import (
    mailing_or_404,
    preview_supporter,
    preview_variant,
    settings,
)

# The service's field -> the form's field, where they differ (the rates are typed in percent).
FORM_FIELD = {service: form for form, service in PERCENT_FIELDS.items()} | {"wait_minutes": "wait"}
_ranges = {
    name: next(v for v in field.validators if isinstance(v, validate.Range))
    for name, field in AbTestInSchema().fields.items()
    if any(isinstance(v, validate.Range) for v in field.validators)
}


@blueprint.route("/<int:mailing_id>/ab-test", methods=["GET", "POST"])
@requires(Role.CAMPAIGNER)
def ab_test(mailing_id: int):
    mailing = mailing_or_404(mailing_id, lock=request.method == "POST")
    if not mailing.is_editable:
        flash(
            f"This mailing is {mailing.status.value}: an A/B test is set up on a draft only.",
            "error",
        )
        return redirect(url_for(".show", mailing_id=mailing.id) + "#ab-test")
    form = AbTestForm()
    if request.method == "GET" and mailing.ab_test is not None:
        form.fill_from(mailing.ab_test, design.variant_settings(mailing))
    status, variant_problems = 200, {}
    if request.method == "POST":
        status = 422
        if form.validate_on_submit():
            try:
                design.configure_ab_test(mailing, form.ab_test_data(), actor=actor())
            except DomainError as exc:
                # Checked before anything changed: nothing to undo, the form keeps what was typed.
                variant_problems = _put_errors(form, exc)
                status = exc.status
            else:
                db.session.commit()
                flash("A/B test saved. Preview each variant below.", "success")
                return redirect(url_for(".ab_test", mailing_id=mailing.id))
    return render_template(
        "staff/mailings/ab_test.html",
        mailing=mailing,
        form=form,
        variant_problems=variant_problems,
        refused=status != 200,
        preview_as=preview_supporter(),
        preview_variant=preview_variant(mailing),
    ), status


@blueprint.post("/<int:mailing_id>/ab-test/remove")
@requires(Role.CAMPAIGNER)
def remove_ab_test(mailing_id: int):
    mailing = mailing_or_404(mailing_id, lock=True)
    try:
        design.remove_ab_test(mailing, actor=actor())
    except DomainError as exc:  # no longer a draft: refused before anything changed
        flash(exc.message, "error")
        return redirect(url_for(".show", mailing_id=mailing.id))
    db.session.commit()
    flash("The A/B test is removed: everyone gets the mailing as written.", "success")
    return redirect(url_for(".edit", mailing_id=mailing.id))


@blueprint.post("/<int:mailing_id>/ab-test/winner")
@requires(Role.CAMPAIGNER)
def pick_winner(mailing_id: int):
    mailing = mailing_or_404(mailing_id, lock=True)
    label = request.form.get("variant", "").strip()[:5]
    try:
        results = decision.pick_winner(mailing, label, settings(), actor=actor())
    except DomainError as exc:  # already picked, not started, stopped, no such variant
        flash(exc.message, "error")
    else:
        db.session.commit()
        flash(
            f"Variant {label.upper()} is the winner: it goes to the other "
            f"{results.rest_recipients:,} recipients now.",
            "success",
        )
    return redirect(url_for(".show", mailing_id=mailing.id) + "#ab-test")


def _put_errors(form: AbTestForm, exc: DomainError) -> dict[str, list[str]]:
    """Show the service's refusal on the fields; return the problems of whole variants."""
    details = dict(exc.details or {})
    variant_problems: dict[str, list[str]] = {}
    variants = details.pop("variants", None)
    if isinstance(variants, dict):
        for index, problems in variants.items():
            index = int(index)
            if index == 0:  # A is the mailing itself: its problems are the editor's to fix
                add_form_errors(
                    form, [f"The mailing as written (A): {m}" for m in flatten_messages(problems)]
                )
                continue
            entry = form.variants.entries[index - 1].form
            for name, messages in problems.items():
                if name in entry:
                    add_errors(entry[name], messages)
                else:
                    variant_problems.setdefault(variant_label(index - 1), []).extend(
                        flatten_messages(messages)
                    )
    elif variants:
        add_form_errors(form, variants)
    shown = bool(variants)
    for name, messages in details.items():
        field = FORM_FIELD.get(name, name)
        if field in form:
            add_errors(form[field], [_range_in_words(name)] if name in _ranges else messages)
            shown = True
    if not shown:
        add_form_errors(form, exc.message)
    return variant_problems


def _range_in_words(name: str) -> str:
    """The schema's limits for a number, in the units the form shows it in."""
    limits = _ranges[name]
    if name == "wait_minutes":
        days = limits.max / (24 * 60)
        return f"Wait at least {limits.min} minute and at most {days:g} days."
    scale, unit = (100, " %") if name in FORM_FIELD else (1, "")
    low = f"{'at least' if limits.min_inclusive else 'more than'} {limits.min * scale:,g}{unit}"
    if limits.max is None:
        return f"Give a number of {low}."
    high = f"{'at most' if limits.max_inclusive else 'less than'} {limits.max * scale:,g}{unit}"
    return f"Give a number of {low} and {high}."
