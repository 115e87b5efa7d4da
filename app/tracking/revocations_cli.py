"""`clarion links revoke --mailing ID | --supporter ID [--reason R]`: withdraw links sent."""

from __future__ import annotations

import getpass

import click

from app.extensions import db
from app.tracking import revocations


def _cli_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):  # no login name in some containers
        return "cli"


@click.group("links")
def links_cli() -> None:
    """Manage the signed links in mail already sent."""


@links_cli.command("revoke")
@click.option("--mailing", "mailing_id", type=click.IntRange(min=1), help="Mailing id.")
@click.option("--supporter", "supporter_id", type=click.IntRange(min=1), help="Supporter id.")
@click.option("--reason", default=None, help="Why, for the record.")
def revoke_command(mailing_id: int | None, supporter_id: int | None, reason: str | None) -> None:
    """Revoke every link of a mailing, or sent to a supporter (unsubscribe links keep working)."""
    if (mailing_id is None) == (supporter_id is None):
        raise click.UsageError("Give exactly one of --mailing ID or --supporter ID.")
    if reason is not None and len(reason) > revocations.MAX_REASON_LENGTH:
        raise click.BadParameter(
            f"at most {revocations.MAX_REASON_LENGTH} characters", param_hint="--reason"
        )
    actor = _cli_actor()
    try:
        if mailing_id is not None:
            revocation = revocations.revoke_mailing_links(mailing_id, actor=actor, reason=reason)
            what = f"mailing {mailing_id}"
        else:
            revocation = revocations.revoke_supporter_links(
                supporter_id, actor=actor, reason=reason
            )
            what = f"supporter {supporter_id}"
    except revocations.UnknownTarget as exc:
        raise click.ClickException(str(exc)) from exc
    db.session.commit()
    click.echo(
        f"Revoked every link of {what} signed until {revocation.revoked_at:%Y-%m-%d %H:%M:%S} "
        f"UTC (revocation {revocation.id}); unsubscribe links keep working. Other web "
        f"processes enforce it within {revocations.CACHE_SECONDS:g} seconds."
    )
