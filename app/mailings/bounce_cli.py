"""`clarion bounces import FILE`: record the bounces in a mailbox of delivery status reports."""

from __future__ import annotations

import email
import logging
import mailbox
from collections.abc import Iterator
from email.message import Message
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy.exc import SQLAlchemyError

from app.extensions import db
from app.mailings.bounces import DsnImportSummary, record_dsn

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
        messages = read_messages(path)
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


def read_messages(path: Path) -> Iterator[Message]:
    """Yield each message in an mbox, an .eml, a folder of .eml files or a Maildir."""
    if path.is_dir():
        if (path / "cur").is_dir() and (path / "new").is_dir():
            yield from mailbox.Maildir(path, factory=None, create=False)
            return
        for eml in sorted(path.glob("*.eml")):
            yield _read_eml(eml)
        return
    with path.open("rb") as f:
        is_mbox = f.read(5) == b"From "
    if is_mbox:
        box = mailbox.mbox(path, factory=None, create=False)
        try:
            yield from box
        finally:
            box.close()
    else:
        yield _read_eml(path)


def _read_eml(path: Path) -> Message:
    with path.open("rb") as f:
        return email.message_from_binary_file(f)
