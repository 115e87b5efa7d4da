"""`clarion bounces import FILE`: record the bounces in a mailbox of delivery status reports."""

from __future__ import annotations

import logging
import mailbox
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy.exc import SQLAlchemyError

from app.extensions import db
from app.mailings.feedback.bounces import DsnImportSummary, record_dsn
from mailers.mailboxes import read_mailbox

log = logging.getLogger(__name__)


@click.group("bounces")
def bounces_cli() -> None:
    """Bounces and complaints reported after sending."""


@bounces_cli.command("import")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@with_appcontext
def import_command(path: Path) -> None:
    """Import bounces from an mbox file, an .eml file, a folder of .eml files or a Maildir.

    Importing the same mailbox again records nothing new.
    """
    settings = current_app.config["CLARION"]
    summary = DsnImportSummary()
    try:
        messages = read_mailbox(path)
        for position, msg in enumerate(messages, start=1):
            summary.messages += 1
            try:
                record_dsn(msg, summary, soft_bounce_limit=settings.soft_bounce_limit)
            except SQLAlchemyError:
                raise
            except Exception as exc:  # noqa: BLE001 - one odd message must not stop the import
                db.session.rollback()
                summary.unreadable += 1
                log.warning("message %d in %s could not be read: %s", position, path, exc)
                continue
            # Commit as we go: an interrupted import keeps its work, and re-running is a no-op.
            db.session.commit()
    except (OSError, mailbox.Error) as exc:
        raise click.ClickException(f"Could not read {path}: {exc}") from exc
    click.echo(summary.describe())
