"""`clarion unsubscribes import FILE`: act on mail sent to the List-Unsubscribe mailto address.

Each message's subject is `unsubscribe-<token>`; consent.unsubscribe_by_mail acts on it.
Running the same mailbox twice changes nothing the second time.
"""

from __future__ import annotations

import email.policy
import mailbox
from collections import Counter
from pathlib import Path

import click
from flask import current_app

from app.extensions import db
from app.links.tokens import TokenService
from app.tracking import consent
from mailers.mailboxes import read_mailbox

OUTCOMES = {
    "unsubscribed": "unsubscribed",
    "already_unsubscribed": "already unsubscribed (or bounced)",
    "already_removed": "supporter no longer exists",
    "bad_token": "subject token not valid",
    "no_token": "no unsubscribe token in the subject",
}


def import_unsubscribes(path: Path, tokens: TokenService) -> Counter:
    """Process every message at `path`, committing each one; return counts by outcome."""
    counts: Counter = Counter()
    for message in read_mailbox(path, policy=email.policy.default):
        counts[consent.unsubscribe_by_mail(message, tokens)] += 1
        db.session.commit()
    return counts


@click.group("unsubscribes")
def unsubscribes_cli() -> None:
    """Handle unsubscribe requests that arrived by email."""


@unsubscribes_cli.command("import")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
def import_command(path: Path) -> None:
    """Unsubscribe everyone who mailed the unsubscribe address (mbox, .eml or Maildir)."""
    tokens = TokenService(current_app.config["CLARION"].secret_keys)
    try:
        counts = import_unsubscribes(path, tokens)
    except (mailbox.Error, OSError) as exc:
        raise click.ClickException(f"could not read {path}: {exc}") from exc
    total = sum(counts.values())
    click.echo(f"Read {total} message{'s' if total != 1 else ''}.")
    for outcome, label in OUTCOMES.items():
        if counts[outcome]:
            click.echo(f"  {counts[outcome]:>6}  {label}")
