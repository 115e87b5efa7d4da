"""The `clarion` command: a Flask CLI group, so `flask --app app …` works too."""

from __future__ import annotations

import click
from flask.cli import FlaskGroup

from app import create_app
from app.auth.cli import tokens_cli, users_cli
from app.campaigns.cli import campaigns_cli
from app.demo import demo_cli
from app.mailings.cli import mailings_cli
from app.mailings.feedback.bounce_import import bounces_cli
from app.privacy.cli import supporter_commands
from app.supporters.cli import supporters_cli
from app.tracking.revocations_cli import links_cli
from app.tracking.stats_cli import stats_cli
from app.tracking.unsubscribe_cli import unsubscribes_cli
from workers.cli import worker_command


def register_commands(app) -> None:
    """Attach each domain's command group to the app's CLI."""
    for command in (
        tokens_cli,
        users_cli,
        demo_cli,
        supporters_cli,
        unsubscribes_cli,
        mailings_cli,
        campaigns_cli,
        bounces_cli,
        links_cli,
        stats_cli,
        worker_command,
    ):
        app.cli.add_command(command)
    # GDPR erase and export reach every domain, so they are defined above them (app/privacy/).
    for command in supporter_commands:
        supporters_cli.add_command(command)


def _create_app():
    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app, add_version_option=False)
def main() -> None:
    """Clarion: email campaigns and supporter tracking."""
