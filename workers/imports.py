"""RQ job: run a supporter CSV import."""

from __future__ import annotations


def run_import(import_id: int) -> None:
    """Run import `import_id` in a fresh app (the worker reads settings from the environment)."""
    from app import create_app
    from app.supporters import importer

    app = create_app()
    with app.app_context():
        importer.run_import(import_id, app.config["CLARION"])
