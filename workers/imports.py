"""RQ job for supporter imports: a thin wrapper around app.supporters.importer."""

from __future__ import annotations

from app.supporters import importer
from workers.runtime import job_context


def run_import(import_id: int) -> None:
    """Run supporter CSV import `import_id`."""
    with job_context() as settings:
        importer.run_import(import_id, settings)
