"""CSV imports under /api/v1/imports, run in the background (roles as in supporters.api)."""

from __future__ import annotations

from flask import Response, current_app, request, stream_with_context, url_for
from marshmallow import EXCLUDE, ValidationError

from app.api.auth import current_actor, require_role
from app.api.blueprint import ApiBlueprint, commit, get_or_404
from app.api.errors import ApiError
from app.auth import audit
from app.auth.models import Role
from app.supporters import schemas as s
from app.supporters.csvencoding import CsvFileError
from app.supporters.import_preview import refuse_unreadable_upload
from app.supporters.importer import create_import, rejections_csv
from app.supporters.models import SupporterImport

imports = ApiBlueprint(
    "imports", __name__, url_prefix="/imports", description="CSV imports, run in the background."
)


@imports.post("")
@require_role(Role.CAMPAIGNER)
@imports.arguments(s.ImportUploadSchema, location="files", content_type="multipart/form-data")
@imports.response(202, s.ImportStartedSchema)
def start_import(files):
    """Upload a CSV of supporters to import in the background; poll `status_url` for progress."""
    # webargs reads one location per schema: the file above, the plain form fields here.
    try:
        form = s.ImportFormSchema().load(request.form.to_dict(), unknown=EXCLUDE)
    except ValidationError as exc:
        raise ApiError(422, "validation_error", "Invalid form fields.", exc.messages) from exc
    upload = files["file"]
    _check_csv(upload, form.get("encoding"))
    tag_names = [t.strip() for t in (form.get("tags") or "").split(",") if t.strip()]
    job = create_import(
        upload.stream,
        upload.filename,
        list_name=(form.get("list") or "").strip() or None,
        tag_names=tag_names,
        source=form.get("source"),
        created_by=current_actor(),
        settings=current_app.config["CLARION"],
        encoding=form.get("encoding"),
    )
    audit.record(
        current_actor(),
        "import_started",
        subject_type="import",
        subject_id=job.id,
        detail=f"file {upload.filename!r}",
    )
    commit()
    return {
        "id": job.id,
        "status": job.status.value,
        "status_url": url_for("imports.get_import", import_id=job.id),
    }


def _check_csv(upload, encoding: str | None) -> None:
    """Refuse what is plainly not a CSV in a text encoding we can read before storing it."""
    try:
        refuse_unreadable_upload(upload.filename, upload.stream, encoding)
    except CsvFileError as exc:
        raise ApiError(422, "invalid_import", str(exc), {"file": [str(exc)]}) from exc


@imports.get("/<int:import_id>")
@require_role(Role.ANALYST)
@imports.response(200, s.ImportSchema)
def get_import(import_id):
    """Get an import's status, counts and progress."""
    return get_or_404(SupporterImport, import_id, "import")


@imports.get("/<int:import_id>/errors.csv")
@require_role(Role.ANALYST)
@imports.response(200, description="CSV of rejected rows: row number, reason, raw row.")
def import_errors(import_id):
    """Download the rows an import rejected, as CSV."""
    get_or_404(SupporterImport, import_id, "import")
    return Response(
        stream_with_context(rejections_csv(import_id)),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="import-{import_id}-errors.csv"'},
    )
