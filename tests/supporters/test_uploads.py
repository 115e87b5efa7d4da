"""Stored CSV uploads are deleted once old, unless an unfinished import still reads them."""

from __future__ import annotations

import io
import os
import time
from dataclasses import replace

import pytest

from app.errors import NotFound
from app.extensions import db
from app.supporters.models import ImportStatus, SupporterImport
from app.supporters.uploads import remove_expired_uploads, store_upload, stored_upload

DAY = 24 * 3600


@pytest.fixture
def local(settings, tmp_path):
    return replace(settings, import_dir=tmp_path / "imports", import_retention_hours=24)


def _upload(settings, age_seconds: float):
    path = store_upload(io.BytesIO(b"email\nann@example.org\n"), settings)
    stamp = time.time() - age_seconds
    os.utime(path, (stamp, stamp))
    return path


def _import_of(path, status: ImportStatus) -> None:
    db.session.add(
        SupporterImport(filename="p.csv", stored_path=str(path), tag_names=[], status=status)
    )
    db.session.flush()


def test_old_uploads_go_and_recent_ones_stay(local):
    old, recent = _upload(local, 2 * DAY), _upload(local, 3600)
    assert remove_expired_uploads(local) == 1
    assert not old.exists() and recent.exists()
    with pytest.raises(NotFound):  # the staff app then asks for the file again
        stored_upload(old.stem, local)
    assert stored_upload(recent.stem, local) == recent


def test_an_unfinished_import_keeps_its_file_a_finished_one_does_not(local):
    queued, running = _upload(local, 2 * DAY), _upload(local, 2 * DAY)
    done, failed = _upload(local, 2 * DAY), _upload(local, 2 * DAY)
    _import_of(queued, ImportStatus.QUEUED)
    _import_of(running, ImportStatus.RUNNING)
    _import_of(done, ImportStatus.DONE)
    _import_of(failed, ImportStatus.FAILED)
    assert remove_expired_uploads(local) == 2
    assert queued.exists() and running.exists()
    assert not done.exists() and not failed.exists()


def test_only_upload_files_are_touched(local):
    _upload(local, 0)  # makes the directory
    other = local.import_dir / "notes.csv"
    other.write_text("not an upload")
    stamp = time.time() - 2 * DAY
    os.utime(other, (stamp, stamp))
    assert remove_expired_uploads(local) == 0 and other.exists()


def test_no_directory_yet_is_nothing_to_do(local):
    assert remove_expired_uploads(local) == 0
