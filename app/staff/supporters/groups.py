"""Mailing lists and tags: list, create, rename, delete (deleting keeps the supporters)."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from app.auth.models import Role
from app.errors import Conflict, NotFound
from app.extensions import db
from app.staff.access import requires
from app.staff.forms import add_errors
from app.staff.supporters import blueprint
from app.staff.supporters.forms import ListForm, NameForm
from app.supporters import groups
from app.supporters.models import MailingList, Tag

# --- lists -----------------------------------------------------------------------------------


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
        if saved_unless_taken(form.name, lambda: groups.create_list(data)):
            flash(f"List {form.name.data!r} created.", "success")
            return redirect(url_for(".lists"))
    return _lists_page(form), 422


def _lists_page(form):
    return render_template("staff/supporters/lists.html", lists=groups.all_lists(), form=form)


@blueprint.route("/lists/<int:list_id>/edit", methods=["GET", "POST"])
@requires(Role.CAMPAIGNER)
def edit_list(list_id):
    mailing_list = get_or_404(MailingList, list_id, "list")
    form = ListForm(obj=mailing_list)
    if form.validate_on_submit():
        data = {"name": form.name.data, "description": form.description.data or None}
        if saved_unless_taken(form.name, lambda: groups.update_list(mailing_list, data)):
            flash("List saved.", "success")
            return redirect(url_for(".lists"))
    return render_template(
        "staff/supporters/group_edit.html", kind="list", group=mailing_list, form=form
    ), 422 if form.errors else 200


@blueprint.route("/lists/<int:list_id>/delete", methods=["GET", "POST"])
@requires(Role.CAMPAIGNER)
def delete_list(list_id):
    mailing_list = groups.with_member_counts(get_or_404(MailingList, list_id, "list"))
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


# --- tags ------------------------------------------------------------------------------------


@blueprint.get("/tags")
@requires(Role.ANALYST)
def tags():
    return _tags_page(NameForm())


@blueprint.post("/tags")
@requires(Role.CAMPAIGNER)
def create_tag():
    form = NameForm()
    if form.validate_on_submit() and saved_unless_taken(
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
    tag = get_or_404(Tag, tag_id, "tag")
    form = NameForm(obj=tag)
    if form.validate_on_submit() and saved_unless_taken(
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
    tag = get_or_404(Tag, tag_id, "tag")
    if request.method == "POST":
        groups.delete_tag(tag)
        db.session.commit()
        flash(f"Tag {tag.name!r} deleted; the supporters who had it are untagged.", "success")
        return redirect(url_for(".tags"))
    members = groups.tag_counts().get(tag.id, 0)
    return render_template(
        "staff/supporters/group_delete.html", kind="tag", group=tag, members=members
    )


# --- for lists, tags and segments alike ------------------------------------------------------


def get_or_404(model, row_id: int, label: str):
    found = db.session.get(model, row_id)
    if found is None:
        raise NotFound(f"No {label} with id {row_id}.")
    return found


def saved_unless_taken(name_field, change) -> bool:
    """Run a create/rename and commit; a name already taken becomes an error on the field."""
    try:
        change()
        db.session.commit()
    except Conflict as exc:
        db.session.rollback()
        add_errors(name_field, exc.message)
        return False
    return True
