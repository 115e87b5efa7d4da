"""Staff pages: CSV imports of supporters (upload, preview, progress, rejected rows) and exports.

An upload is stored first and previewed (encoding, delimiter, which column feeds which field,
the first rows), and its import is queued only when staff press "Start import": the job then
reads the same stored file the preview read.
"""

from __future__ import annotations

from flask import (
    Response,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import HiddenField, SelectField, StringField
from wtforms.fields import SelectChoice
from wtforms.validators import AnyOf, Length, Optional

from app.auth import audit
from app.auth.models import Role
from app.db import utcnow
from app.extensions import db
from app.security import parse_id
from app.staff.access import actor, requires, staff_blueprint
from app.supporters import groups, importer, uploads
from app.supporters.csvencoding import CsvFileError, describe
from app.supporters.exporter import export_csv
from app.supporters.import_preview import ENCODING_CHOICES, preview_file, refuse_unreadable_upload
from app.supporters.models import ImportStatus, SubscriptionStatus
from app.supporters.segments import SegmentDefinitionError, segment_query, validate_definition

blueprint = staff_blueprint("staff_imports", __name__, url_prefix="/staff/imports")

IMPORTS_PER_PAGE = 50
# The export form's list and tag menus; an organisation with more names than this exports by
# segment through the API or CLI instead.
MENU_LIMIT = 500
LIVE_STATUSES = frozenset({ImportStatus.QUEUED, ImportStatus.RUNNING})
KNOWN_ENCODINGS = [code for code, _ in ENCODING_CHOICES]
UNKNOWN_ENCODING = "Choose an encoding from the list."


class UploadForm(FlaskForm):
    file = FileField("CSV file", validators=[FileRequired("Choose a CSV file to upload.")])


class StartForm(FlaskForm):
    """The options the API's upload takes, chosen after the preview."""

    name = HiddenField()  # the uploaded file's name, cut to fit when the import is recorded
    encoding = HiddenField(validators=[Optional(), AnyOf(KNOWN_ENCODINGS, UNKNOWN_ENCODING)])
    list_name = StringField("Add everyone to this list", validators=[Optional(), Length(max=200)])
    tags = StringField("Tag everyone with", validators=[Optional(), Length(max=2000)])
    source = StringField("Source, for rows without one", validators=[Optional(), Length(max=200)])


class ExportForm(FlaskForm):
    list_id = SelectField("List")  # choices: the lists there are, set per request
    tag_id = SelectField("Tag")
    status = SelectField(
        "Subscription status",
        choices=[
            SelectChoice("", "Any status"),
            *(SelectChoice(s.value, s.value.capitalize()) for s in SubscriptionStatus),
        ],
    )


@blueprint.get("/")
@requires(Role.ANALYST)
def index():
    before_id = parse_id(request.args.get("after", ""))
    imports = importer.recent_imports(limit=IMPORTS_PER_PAGE + 1, before_id=before_id)
    older = imports[IMPORTS_PER_PAGE - 1].id if len(imports) > IMPORTS_PER_PAGE else None
    return render_template(
        "staff/imports/index.html", imports=imports[:IMPORTS_PER_PAGE], older=older
    )


@blueprint.route("/new", methods=["GET", "POST"])
@requires(Role.CAMPAIGNER)
def upload():
    form = UploadForm()
    if form.validate_on_submit():
        file = form.file.data
        try:
            refuse_unreadable_upload(file.filename, file.stream)
        except CsvFileError as exc:
            form.file.errors.append(str(exc))
        else:
            stored = uploads.store_upload(file.stream, _settings())
            return redirect(url_for(".preview", token=stored.stem, name=file.filename))
    return render_template("staff/imports/upload.html", form=form), 422 if form.errors else 200


@blueprint.errorhandler(413)
def upload_too_large(exc):
    form = UploadForm(formdata=None)
    form.file.errors = [
        f"The file is larger than the {_size(request.max_content_length)} this page accepts. "
        "Split it into smaller files, or import it with the command line."
    ]
    return render_template("staff/imports/upload.html", form=form), 413


@blueprint.get("/preview/<token>")
@requires(Role.CAMPAIGNER)
def preview(token):
    path = uploads.stored_upload(token, _settings())
    if (started := importer.import_of_stored_upload(path)) is not None:
        flash("This file's import has already started.", "info")
        return redirect(url_for(".show", import_id=started.id))
    form = StartForm(formdata=None, data={"name": request.args.get("name", "")[:300]})
    encoding = request.args.get("encoding", "")
    if encoding in KNOWN_ENCODINGS:
        form.encoding.data = encoding
    elif encoding:
        form.encoding.errors = [UNKNOWN_ENCODING]
    return _render_preview(token, path, form)


@blueprint.post("/preview/<token>")
@requires(Role.CAMPAIGNER)
def start(token):
    path = uploads.stored_upload(token, _settings())
    if (started := importer.import_of_stored_upload(path)) is not None:
        return redirect(url_for(".show", import_id=started.id))
    form = StartForm()
    encoding = form.encoding.data or None
    if not form.validate() or not preview_file(path, encoding).can_start:
        return _render_preview(token, path, form)
    supporter_import = importer.queue_stored_import(
        path,
        form.name.data or "upload.csv",
        list_name=form.list_name.data,
        tag_names=(form.tags.data or "").split(","),
        source=form.source.data,
        created_by=actor(),
        settings=_settings(),
        encoding=encoding,
    )
    audit.record(
        actor(),
        "import_started",
        subject_type="import",
        subject_id=supporter_import.id,
        detail=f"file {supporter_import.filename!r}",
    )
    db.session.commit()
    return redirect(url_for(".show", import_id=supporter_import.id))


def _render_preview(token: str, path, form: StartForm):
    encoding = None if form.encoding.errors else form.encoding.data
    result = preview_file(path, encoding or None)
    status = 200 if result.can_start and not form.errors else 422
    return render_template(
        "staff/imports/preview.html",
        token=token,
        form=form,
        preview=result,
        encodings=ENCODING_CHOICES,
    ), status


@blueprint.get("/<int:import_id>")
@requires(Role.ANALYST)
def show(import_id):
    return _render_import("staff/imports/show.html", import_id)


@blueprint.get("/<int:import_id>/progress")
@requires(Role.ANALYST)
def progress(import_id):
    """The live part of the import page, which htmx polls while the import runs."""
    return _render_import("staff/imports/_progress.html", import_id)


def _render_import(template: str, import_id: int) -> str:
    return render_template(
        template, job=importer.get_import(import_id), live=LIVE_STATUSES, encoding_name=describe
    )


@blueprint.get("/<int:import_id>/errors.csv")
@requires(Role.ANALYST)
def errors_csv(import_id):
    importer.get_import(import_id)
    return Response(
        stream_with_context(importer.rejections_csv(import_id)),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="import-{import_id}-errors.csv"'},
    )


@blueprint.route("/export", methods=["GET", "POST"])
@requires(Role.ANALYST)
def export():
    form = ExportForm()
    lists = groups.list_lists({"page": 1, "page_size": MENU_LIMIT})["items"]
    tags = groups.list_tags({"page": 1, "page_size": MENU_LIMIT})["items"]
    form.list_id.choices = [
        SelectChoice("", "All supporters"),
        *(SelectChoice(str(m.id), f"{m.name} ({m.member_count:,} members)") for m in lists),
    ]
    form.tag_id.choices = [
        SelectChoice("", "Any tag"),
        *(SelectChoice(str(t.id), f"{t.name} ({t.supporter_count:,} supporters)") for t in tags),
    ]
    if form.validate_on_submit():
        try:
            definition = validate_definition(_export_definition(form))
        except SegmentDefinitionError as exc:  # a list or tag deleted since the page was shown
            form.list_id.errors.append(exc.message)
        else:
            detail = _describe_export(
                form, {str(m.id): m.name for m in lists}, {str(t.id): t.name for t in tags}
            )
            audit.record(actor(), "export", subject_type="supporters", detail=detail)
            db.session.commit()
            filename = f"supporters-{utcnow():%Y-%m-%d}.csv"
            return Response(
                stream_with_context(export_csv(segment_query(definition))),
                mimetype="text/csv",
                headers={"Content-Disposition": f'attachment; filename="{filename}"'},
            )
    return render_template("staff/imports/export.html", form=form), 422 if form.errors else 200


def _export_definition(form: ExportForm) -> dict:
    """The form's choices as a segment definition: the one way supporters are selected."""
    status = form.status.data
    return {
        "include_lists": [int(form.list_id.data)] if form.list_id.data else [],
        "include_tags": [int(form.tag_id.data)] if form.tag_id.data else [],
        "statuses": [status] if status else [s.value for s in SubscriptionStatus],
    }


def _describe_export(form: ExportForm, list_names: dict, tag_names: dict) -> str:
    return ", ".join(
        [
            f"list {list_names[form.list_id.data]!r}" if form.list_id.data else "all supporters",
            f"tag {tag_names[form.tag_id.data]!r}" if form.tag_id.data else "any tag",
            f"status {form.status.data or 'any'}",
        ]
    )


def _size(limit: int | None) -> str:
    limit = limit or 0
    if limit >= 1024 * 1024:
        return f"{limit // (1024 * 1024)} MiB"
    return f"{limit // 1024} KiB"


def _settings():
    return current_app.config["CLARION"]
