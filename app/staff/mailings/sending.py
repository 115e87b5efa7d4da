"""Send a mailing: the pre-send check, send now or at a time, and pause, resume or cancel."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from flask import flash, redirect, render_template, url_for

from app.auth.models import Role
from app.errors import DomainError
from app.extensions import db
from app.mailings.compose import checks, services
from app.mailings.delivery import control
from app.mailings.models import Mailing
from app.staff.access import actor, requires
from app.staff.mailings import blueprint
from app.staff.mailings.ab_summary import audience_split
from app.staff.mailings.forms import SendForm
from app.staff.mailings.views import mailing_or_404, settings

# --- check and send --------------------------------------------------------------------------


@blueprint.get("/<int:mailing_id>/check")
@requires(Role.ANALYST)
def check(mailing_id: int):
    mailing = mailing_or_404(mailing_id)
    return _check_page(mailing, _send_form(formdata=None))


def _send_form(**kwargs) -> SendForm:
    form = SendForm(**kwargs)
    form.timezone.choices = sorted(available_timezones())
    return form


def _check_page(mailing: Mailing, form: SendForm, problem: str | None = None, status: int = 200):
    check = checks.pre_send_check(mailing, settings()) if mailing.is_editable else None
    return render_template(
        "staff/mailings/check.html",
        mailing=mailing,
        check=check,
        split=audience_split(mailing, check.recipients) if check else None,
        form=form,
        problem=problem,
    ), status


@blueprint.post("/<int:mailing_id>/send")
@requires(Role.CAMPAIGNER)
def send(mailing_id: int):
    mailing = mailing_or_404(mailing_id, lock=True)
    form = _send_form()
    if not form.validate_on_submit():
        return _check_page(mailing, form, status=422)
    try:
        at = _send_time(form)
    except ValueError as exc:
        form.at.errors = [str(exc)]
        return _check_page(mailing, form, status=422)
    try:
        services.send_mailing(mailing, settings(), at=at, actor=actor())
    except DomainError as exc:  # refused before anything changed, as in the editor
        return _check_page(mailing, form, problem=exc.message, status=exc.status)
    later = at is not None and mailing.scheduled_at == at
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


def _control(mailing_id: int, change, done: str):
    mailing = mailing_or_404(mailing_id, lock=True)
    try:
        change(mailing)
    except DomainError as exc:  # refused before anything changed
        flash(exc.message, "error")
        return redirect(url_for(".show", mailing_id=mailing_id))
    db.session.commit()
    flash(done, "success")
    return redirect(url_for(".show", mailing_id=mailing.id))


@blueprint.post("/<int:mailing_id>/pause")
@requires(Role.CAMPAIGNER)
def pause(mailing_id: int):
    return _control(mailing_id, lambda m: control.pause(m, actor=actor()), "Paused.")


@blueprint.post("/<int:mailing_id>/resume")
@requires(Role.CAMPAIGNER)
def resume(mailing_id: int):
    return _control(
        mailing_id,
        lambda m: control.resume(m, settings(), actor=actor()),
        "Resumed.",
    )


@blueprint.post("/<int:mailing_id>/cancel")
@requires(Role.CAMPAIGNER)
def cancel(mailing_id: int):
    return _control(
        mailing_id,
        lambda m: control.cancel(m, actor=actor()),
        "Cancelled: nothing more will be sent.",
    )
