"""Compose a mailing: the editor (new and edit), its audience picker and live count."""

from __future__ import annotations

import re

from flask import flash, redirect, render_template, request, url_for

from app.auth.models import Role
from app.errors import DomainError
from app.extensions import db
from app.mailings.compose import checks, services
from app.mailings.delivery.launch import known_custom_fields
from app.mailings.models import Mailing
from app.staff.access import requires
from app.staff.forms import add_errors, add_form_errors, show_on_fields
from app.staff.mailings import blueprint
from app.staff.mailings.forms import AUDIENCE_KEYS, MailingForm
from app.staff.mailings.views import mailing_or_404, preview_supporter, preview_variant
from mailers.merge import FREEZE_FIELDS, PER_RECIPIENT_URLS, STANDARD_FIELDS, html_env

_LINE = re.compile(r"line (\d+): ")


@blueprint.route("/new", methods=["GET", "POST"])
@requires(Role.CAMPAIGNER)
def new():
    form = MailingForm()
    return _editor(form, None)


@blueprint.route("/<int:mailing_id>/edit", methods=["GET", "POST"])
@requires(Role.CAMPAIGNER)
def edit(mailing_id: int):
    mailing = mailing_or_404(mailing_id, lock=request.method == "POST")
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
        preview_as=preview_supporter(),
        preview_variant=preview_variant(mailing) if mailing else None,
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


def _put_errors(form: MailingForm, exc: DomainError) -> None:
    # The audience's problems come by part (include_lists, segments…); a part the form does
    # not know goes under the first of them.
    details = dict(exc.details or {})
    audience = details.pop("audience", None)
    shown = False
    if isinstance(audience, dict):
        for part, messages in audience.items():
            add_errors(form[part] if part in AUDIENCE_KEYS else form.include_lists, messages)
            shown = True
    if not show_on_fields(form, details) and not shown:
        add_form_errors(form, exc.message)


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
