"""`clarion unsubscribes import FILE`: act on mail sent to the List-Unsubscribe mailto address.

Each message's subject is `unsubscribe-<token>` (mailers/message.py writes the header); the
signed token, not the sender's address, says who asked, since people write from aliases and
forwarding addresses. Running the same mailbox twice changes nothing the second time.
"""

from __future__ import annotations

import email
import email.policy
import mailbox
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import click
from flask import current_app

from app.extensions import db
from app.links.tokens import Purpose, TokenError, TokenService
from app.supporters.models import SubscriptionStatus, Supporter
from app.tracking import consent

_SUBJECT_TOKEN = re.compile(r"unsubscribe-([A-Za-z0-9_.-]+)", re.IGNORECASE)


def read_messages(path: Path) -> Iterator[email.message.EmailMessage]:
    """Yield every message of a Maildir folder, an mbox file or a single .eml file."""
    if path.is_dir():
        if not all((path / sub).is_dir() for sub in ("cur", "new", "tmp")):
            raise click.BadParameter(f"{path} is a folder but not a Maildir (cur, new, tmp)")
        folder = mailbox.Maildir(path, factory=None, create=False)
        for key in folder.iterkeys():
            yield _parse(folder.get_bytes(key))
        return
    with path.open("rb") as f:
        start = f.read(5)
    if start == b"From ":
        box = mailbox.mbox(path, create=False)
        try:
            for key in box.iterkeys():
                yield _parse(box.get_bytes(key))
        finally:
            box.close()
    else:
        yield _parse(path.read_bytes())


def _parse(data: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)


def process_message(message, tokens: TokenService) -> str:
    """Unsubscribe the supporter a message names; return what happened (see OUTCOMES)."""
    try:
        subject = str(message.get("Subject", ""))
    except Exception:  # a malformed encoded word; the raw header may still hold the token
        subject = str(message.get_all("Subject", [""])[0])
    match = _SUBJECT_TOKEN.search(subject)
    if not match:
        return "no_token"
    try:
        claims = tokens.loads(Purpose.UNSUBSCRIBE, match.group(1))
    except TokenError:
        return "bad_token"
    supporter = db.session.get(Supporter, claims.supporter_id)
    if supporter is None:
        return "already_removed"
    was_subscribed = supporter.status == SubscriptionStatus.SUBSCRIBED
    consent.unsubscribe(supporter, claims.mailing_id, channel="mailto", ua_class="mailto")
    return "unsubscribed" if was_subscribed else "already_unsubscribed"


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
    for message in read_messages(path):
        counts[process_message(message, tokens)] += 1
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
