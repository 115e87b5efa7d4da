"""Uploaded CSV files, kept in IMPORT_DIR until their import no longer needs them.

An upload is stored before its import is queued (staff first see how it will be read), so a
file may never be imported at all. These files hold supporters' personal data: the clock
removes each once it is IMPORT_RETENTION_HOURS old and no queued or running import needs it.
"""

from __future__ import annotations

import io
import logging
import re
import shutil
import time
import uuid
from pathlib import Path

from sqlalchemy import select

from app.errors import NotFound
from app.extensions import db
from app.supporters.models import ImportStatus, SupporterImport

log = logging.getLogger(__name__)

# Stored uploads are named by a random token, so a name from a form can only ever point there.
UPLOAD_TOKEN = re.compile(r"[0-9a-f]{32}")


def store_upload(fileobj, settings) -> Path:
    """Save an uploaded CSV under IMPORT_DIR; its name without ".csv" is its token.

    The staff app stores a file first and queues its import only once staff have seen how it
    will be read, so storing and queueing are two steps.
    """
    import_dir = Path(settings.import_dir)
    import_dir.mkdir(parents=True, exist_ok=True)
    path = import_dir / f"{uuid.uuid4().hex}.csv"
    with open(path, "wb") as out:
        first = fileobj.read(0)
        if isinstance(first, str):
            fileobj = io.BytesIO(fileobj.read().encode())
        shutil.copyfileobj(fileobj, out, 1024 * 1024)
    return path


def stored_upload(token: str, settings) -> Path:
    """Return the path of the file `store_upload` stored as `token`, or raise NotFound."""
    path = Path(settings.import_dir) / f"{token}.csv"
    if not UPLOAD_TOKEN.fullmatch(token or "") or not path.is_file():
        raise NotFound("That upload is no longer on the server; upload the file again.")
    return path


def remove_expired_uploads(settings, *, now: float | None = None) -> int:
    """Delete stored uploads older than the retention that no unfinished import reads.

    A finished or failed import's file goes too: its rows, counts and rejections are in the
    database, and a failed one is started again by uploading the file again. Returns how many
    files it deleted (a clock tick).
    """
    import_dir = Path(settings.import_dir)
    if not import_dir.is_dir():
        return 0
    cutoff = (time.time() if now is None else now) - settings.import_retention_hours * 3600
    expired = []
    for entry in import_dir.glob("*.csv"):
        if not UPLOAD_TOKEN.fullmatch(entry.stem):
            continue
        try:
            if entry.stat().st_mtime < cutoff:
                expired.append(entry)
        except FileNotFoundError:  # another host's clock removed it meanwhile
            continue
    if not expired:
        return 0
    in_use = set(
        db.session.scalars(
            select(SupporterImport.stored_path).where(
                SupporterImport.status.in_([ImportStatus.QUEUED, ImportStatus.RUNNING]),
                SupporterImport.stored_path.in_([str(path) for path in expired]),
            )
        )
    )
    removed = 0
    for path in expired:
        if str(path) not in in_use:
            path.unlink(missing_ok=True)
            removed += 1
    if removed:
        log.info(
            "removed %d stored upload(s) older than %s hours",
            removed,
            settings.import_retention_hours,
        )
    return removed
